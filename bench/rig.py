"""What every benchmark sets up the same way: config, scratch data, servers, floors, processes.

Everything here talks to 127.0.0.1 or to child processes this module starts, and every
process it starts is closed by the `async with` block that started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import sys
import tempfile
import time
from collections.abc import (
    AsyncIterator,
    Awaitable,
    Callable,
    Coroutine,
    Iterable,
    Iterator,
    Mapping,
)
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiosqlite
import psutil

from bot.runtime import Runtime
from core.logging import setup_logging
from core.orchestrator import EnterpriseTaskOrchestrator
from core.settings import DEFAULT_CONFIG_PATH, SERVER_NAMES, AppConfig, RuntimeEnv, load_config
from integrations.mcp import StdioServerHandle
from integrations.mcp.forking import FORK_SERVER_MODULE

REPO = Path(__file__).resolve().parents[1]
FIXTURE_SERVER = REPO / "tests" / "faults" / "fixture_server.py"
MIB = 1024 * 1024


def shipped_config() -> AppConfig:
    """The shipped config file itself, whatever $TASKBOT_CONFIG says."""
    return load_config(DEFAULT_CONFIG_PATH)


def enabled_names(config: AppConfig) -> list[str]:
    return [n for n, s in config.servers.items() if s.enabled]


def only(config: AppConfig, servers: Iterable[str], **top: Any) -> AppConfig:
    """`config` with just `servers` enabled and top-level fields replaced."""
    wanted = set(servers)
    changed = config.with_servers(**{n: {"enabled": n in wanted} for n in SERVER_NAMES})
    return changed.model_copy(update=top) if top else changed


@contextlib.contextmanager
def scratch(label: str) -> Iterator[Path]:
    """A temporary data directory, removed afterwards; logs go to its `logs/` as in production."""
    with tempfile.TemporaryDirectory(prefix=f"taskbot-bench-{label}-") as raw:
        path = Path(raw)
        setup_logging(path / "logs", console=False)
        try:
            yield path
        finally:
            root = logging.getLogger()
            for handler in list(root.handlers):
                root.removeHandler(handler)
                handler.close()


@contextlib.asynccontextmanager
async def orchestrator(
    config: AppConfig, data_dir: Path
) -> AsyncIterator[EnterpriseTaskOrchestrator]:
    """A started orchestrator on `data_dir`; closed (servers stopped and reaped) on exit."""
    orch = EnterpriseTaskOrchestrator(config=config, data_dir=data_dir)
    try:
        await orch.start()
        yield orch
    finally:
        await orch.close()


def live_status(orch: EnterpriseTaskOrchestrator) -> dict[str, str]:
    """Status of each server the orchestrator runs (disabled ones left out)."""
    return {n: h.status.value for n, h in orch.health.servers.items() if n in orch.integrations}


def server_pids(orch: EnterpriseTaskOrchestrator) -> dict[str, int]:
    """Process id of each live stdio server (the handle owns the child)."""
    pids: dict[str, int] = {}
    for name, integration in orch.integrations.items():
        handle = getattr(integration, "handle", None)
        pid = getattr(handle, "pid", None)
        if isinstance(pid, int):
            pids[name] = pid
    return pids


@contextlib.asynccontextmanager
async def running_bot(
    config: AppConfig, api_base: str, token: str, data_dir: Path
) -> AsyncIterator[Runtime]:
    """The whole bot (`Runtime`) polling `api_base`, as tests/e2e run it; stopped on exit."""
    env = RuntimeEnv(bot_token=token, telegram_api_base=api_base, data_dir=data_dir)
    runtime = Runtime(config=config, env=env, metrics_port=None)
    serving = asyncio.create_task(runtime.serve())
    ready = asyncio.create_task(runtime.ready.wait())
    await asyncio.wait({serving, ready}, timeout=120, return_when=asyncio.FIRST_COMPLETED)
    try:
        if serving.done():
            serving.result()
        if not runtime.ready.is_set():
            raise RuntimeError("the bot did not start within 120 s")
        yield runtime
    finally:
        ready.cancel()
        runtime.stop.set()
        await asyncio.wait_for(serving, 120)


# -- processes ----------------------------------------------------------------------------


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        if _is_fork_server(root):
            return [root]  # its children are servers, each counted under its own name
        return [root, *root.children(recursive=True)]
    except psutil.Error:
        return []


def _is_fork_server(proc: psutil.Process) -> bool:
    """The fork server itself; its children (forked servers) share its command line."""
    try:
        parent = proc.parent()
        return FORK_SERVER_MODULE in proc.cmdline() and (
            parent is None or FORK_SERVER_MODULE not in parent.cmdline()
        )
    except psutil.Error:
        return False


def tree_rss(pid: int) -> int:
    """Resident bytes of a process and its live descendants (a launcher and its node)."""
    total = 0
    for proc in _tree(pid):
        with contextlib.suppress(psutil.Error):
            total += proc.memory_info().rss
    return total


def tree_cpu(pid: int) -> float:
    """CPU seconds of a process, its live descendants and the children it already reaped."""
    total = 0.0
    for proc in _tree(pid):
        with contextlib.suppress(psutil.Error):
            t = proc.cpu_times()
            total += t.user + t.system + t.children_user + t.children_system
    return total


def own_rss() -> int:
    return int(psutil.Process().memory_info().rss)


def processes(orch: EnterpriseTaskOrchestrator) -> dict[str, int]:
    """Every process the bot runs: servers by name, helpers (calendar's CalDAV) by command."""
    found = server_pids(orch)
    known = {p.pid for pid in found.values() for p in _tree(pid)}
    with contextlib.suppress(psutil.Error):
        for child in psutil.Process().children():
            if child.pid not in known:
                found[_helper_name(child)] = child.pid
    return found


def _helper_name(child: psutil.Process) -> str:
    try:
        words = child.cmdline()
    except psutil.Error:
        return f"child {child.pid}"
    text = " ".join(words)
    if "radicale" in text:
        return "radicale (calendar's CalDAV)"
    if _is_fork_server(child):
        return "fork server (SDK imported once)"
    tail = [w for w in words[1:] if not w.startswith("-")]
    return f"child {Path(tail[0]).name if tail else child.pid}"


def cpu_snapshot(orch: EnterpriseTaskOrchestrator) -> dict[str, float]:
    """CPU seconds so far of this (bot) process and of every child's process tree."""
    own = psutil.Process().cpu_times()
    out = {"bot": own.user + own.system}
    out |= {name: tree_cpu(pid) for name, pid in processes(orch).items()}
    return out


def cpu_delta(before: Mapping[str, float], after: Mapping[str, float]) -> dict[str, float]:
    return {k: round(after[k] - before.get(k, 0.0), 3) for k in after}


class Events(logging.Handler):
    """Keeps the `extra` fields of log events by name (event names are a contract)."""

    def __init__(self, *names: str) -> None:
        super().__init__(logging.DEBUG)
        self.names = set(names)
        self.seen: dict[str, list[dict[str, Any]]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if record.msg in self.names:
            fields = {k: v for k, v in record.__dict__.items() if k in _EXTRA_FIELDS}
            self.seen.setdefault(str(record.msg), []).append(fields)

    def __enter__(self) -> Events:
        logging.getLogger().addHandler(self)
        return self

    def __exit__(self, *exc_info: object) -> None:
        logging.getLogger().removeHandler(self)


_EXTRA_FIELDS = frozenset({"server", "duration_ms", "pid", "tasks", "error"})


class GcPauses:
    """Collector pauses while inside `with`: a latency spike that matches one is the GC's."""

    def __init__(self) -> None:
        self.pauses: list[tuple[int, float]] = []  # (generation, ms)
        self._began = 0.0

    def __enter__(self) -> GcPauses:
        gc.callbacks.append(self._note)
        return self

    def __exit__(self, *exc_info: object) -> None:
        gc.callbacks.remove(self._note)

    def _note(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._began = time.perf_counter()
        else:
            self.pauses.append((info["generation"], (time.perf_counter() - self._began) * 1000))

    def summary(self) -> dict[str, float]:
        full = [ms for gen, ms in self.pauses if gen == 2]
        return {
            "collections": len(self.pauses),
            "total_ms": round(sum(ms for _, ms in self.pauses), 2),
            "gen2_collections": len(full),
            "gen2_max_ms": round(max(full, default=0.0), 2),
            "max_ms": round(max((ms for _, ms in self.pauses), default=0.0), 2),
        }


# -- counting calls on the wire -----------------------------------------------------------


@dataclass
class CallCounter:
    """Counts MCP tool calls per server by wrapping each handle's `call` (bench-only)."""

    counts: dict[str, int] = field(default_factory=dict)

    def attach(self, orch: EnterpriseTaskOrchestrator) -> None:
        for name, integration in orch.integrations.items():
            handle = getattr(integration, "handle", None)
            if handle is not None:
                handle.call = self._counting(name, handle.call)
                self.counts.setdefault(name, 0)

    def _counting(
        self, name: str, call: Callable[..., Awaitable[object]]
    ) -> Callable[..., Awaitable[object]]:
        async def counted(*args: Any, **kwargs: Any) -> object:
            self.counts[name] += 1
            return await call(*args, **kwargs)

        return counted

    def snapshot(self) -> dict[str, int]:
        return dict(self.counts)


@dataclass
class SqlCounter:
    """Counts statements sent to the store's connection (each one is a hop to its thread)."""

    count: int = 0

    def attach(self, orch: EnterpriseTaskOrchestrator) -> None:
        db = orch.store.db
        for method in ("execute", "executemany", "execute_fetchall", "execute_insert"):
            setattr(db, method, self._counting(getattr(db, method)))

    def _counting(self, method: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return method(*args, **kwargs)

        return counted


# -- floors -------------------------------------------------------------------------------


def echo_handle(name: str = "echo") -> StdioServerHandle:
    """The tests' trivial MCP server over the same stdio transport as ours."""
    return StdioServerHandle(name, sys.executable, [str(FIXTURE_SERVER)], cwd=REPO)


@dataclass
class EchoFloor:
    """Wall time and per-call latency of plain `echo` calls, one handle per lane."""

    wall_s: float
    latencies_ms: list[float]


class EchoLanes:
    """One trivial server per lane (per server it stands in for), started once, reused."""

    def __init__(self, lanes: Iterable[str]) -> None:
        self.handles = {lane: echo_handle(f"echo-{lane}") for lane in lanes}

    async def __aenter__(self) -> EchoLanes:
        await asyncio.gather(*(h.start() for h in self.handles.values()))
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await asyncio.gather(*(h.close() for h in self.handles.values()))

    async def run(
        self,
        calls_per_lane: Mapping[str, int],
        *,
        concurrency: int = 1,
        text: str = "x" * 200,
    ) -> EchoFloor:
        """Each lane makes its calls with `concurrency` callers; lanes run at once."""
        latencies: list[float] = []

        async def caller(handle: StdioServerHandle, calls: Iterator[int]) -> None:
            for _ in calls:
                began = time.perf_counter()
                await handle.call("echo", {"text": text}, timeout=10)
                latencies.append((time.perf_counter() - began) * 1000)

        async def lane(handle: StdioServerHandle, n: int) -> None:
            calls = iter(range(n))
            await asyncio.gather(*(caller(handle, calls) for _ in range(concurrency)))

        began = time.perf_counter()
        await asyncio.gather(
            *(lane(self.handles[k], n) for k, n in calls_per_lane.items() if k in self.handles)
        )
        return EchoFloor(time.perf_counter() - began, latencies)

    def pids(self) -> dict[str, int]:
        return {k: h.pid for k, h in self.handles.items() if h.pid is not None}


async def sqlite_floor(path: Path, n: int, rows_per_task: int) -> list[float]:
    """Milliseconds of the least a durable create can do: one WAL transaction, same pragmas."""
    out: list[float] = []
    async with aiosqlite.connect(path, isolation_level=None) as db:
        await db.execute("PRAGMA journal_mode=WAL")
        await db.execute("PRAGMA synchronous=NORMAL")
        await db.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, uid TEXT UNIQUE, body TEXT)")
        await db.execute("CREATE TABLE o (id INTEGER PRIMARY KEY, uid TEXT, server TEXT)")
        for i in range(n):
            began = time.perf_counter()
            await db.execute("BEGIN IMMEDIATE")
            await db.execute("INSERT INTO t (uid, body) VALUES (?, ?)", (f"u{i}", "b" * 120))
            await db.executemany(
                "INSERT INTO o (uid, server) VALUES (?, ?)",
                [(f"u{i}", f"s{k}") for k in range(rows_per_task)],
            )
            await db.execute("COMMIT")
            out.append((time.perf_counter() - began) * 1000)
    return out


# -- load shapes --------------------------------------------------------------------------


async def offer(n: int, rate: float, one: Callable[[int], Coroutine[Any, Any, None]]) -> float:
    """Open loop: start call i at i/rate s whatever the earlier ones are doing; returns wall s."""
    loop = asyncio.get_running_loop()
    began = loop.time()
    running: list[asyncio.Task[None]] = []
    for i in range(n):
        delay = began + i / rate - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        running.append(asyncio.create_task(one(i)))
    await asyncio.gather(*running)
    return loop.time() - began


async def flat_out(n: int, workers: int, one: Callable[[int], Awaitable[None]]) -> float:
    """Closed loop: `workers` callers each start the next call when theirs returns."""
    counter = iter(range(n))
    began = time.perf_counter()

    async def worker() -> None:
        for i in counter:
            await one(i)

    await asyncio.gather(*(worker() for _ in range(workers)))
    return time.perf_counter() - began


async def until_drained(
    orch: EnterpriseTaskOrchestrator, *, within: float, poll: float = 0.05
) -> tuple[float, dict[str, int]]:
    """Seconds until no outbox row is pending (or `within` passed) and what was left."""
    began = time.perf_counter()
    depth = await orch.outbox_depth()
    while depth and time.perf_counter() - began < within:
        await asyncio.sleep(poll)
        depth = await orch.outbox_depth()
    return time.perf_counter() - began, depth
