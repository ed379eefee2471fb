"""Known costs as the store grows: 10k, 100k, 1M tasks (bench/fill.py says what they hold).

For each size the parent fills a fresh store in bulk, then runs the measurements in a fresh
child interpreter (`python -m bench.scale --child DIR`), so its resident memory belongs to
that size alone. The child measures:
- start-up: `orchestrator.start()` with the shipped config until every live server is
  ONLINE (the servers' own state is empty: the local store is what grows here);
- the reminder tick of core/reminders.py with nothing due, and with three reminders due
  (snoozes falling due each time; the tick's own time, delivery settles after it);
- `/list` for one chat: `store.list_tasks`, the bot's page query (`TaskQueries.page`), and
  the whole bot through the sandbox (send `/list`, wait for the answer), for typical chats
  and for the 100 busy ones;
- the RSS of this process with the bot running (Runtime, dispatcher, orchestrator, sandbox).
Each figure is compared with the same figure at 10k: the ratio is the growth.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import json
import math
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from bench.fill import Filled, describe, fill, sample
from bench.report import Report, percentile
from bench.rig import (
    MIB,
    Events,
    GcPauses,
    enabled_names,
    live_status,
    only,
    orchestrator,
    own_rss,
    running_bot,
    scratch,
    shipped_config,
)
from bot.sandbox import TelegramSandbox
from core.logging import setup_logging
from core.orchestrator import EnterpriseTaskOrchestrator
from core.queries import TaskQueries, View, view_filter
from core.reminders import DeliveryOutcome, Notice, ReminderService

NAME = "scale"
ROUNDS = 3  # repeats of every measurement in a full run; --quick makes it 1
SIZES = {False: (10_000, 100_000, 1_000_000), True: (10_000, 100_000)}
IDLE_TICKS = 1000  # per round
DUE_TICKS = 300  # per round, three reminders due each (p99 is the third worst)
LIST_SAMPLES = 300  # per round, typical chats (busy chats: a third of this)
BOT_SAMPLES = 60  # per round, through the sandbox
CHILD_LIMIT_S = 900  # bounds one size's child
RESULT_MARK = "SCALE-RESULT "
TOKEN = "4343:bench-scale-token"
T = TypeVar("T")


class _Settled:
    """A chat side that delivers instantly: the tick's cost without Telegram's."""

    async def send_notice(self, notice: Notice) -> DeliveryOutcome:
        return DeliveryOutcome.SENT


async def _timed(items: Iterable[T], one: Callable[[T], Awaitable[object]]) -> list[float]:
    """Milliseconds of `one(item)` for each item, one after the other."""
    out: list[float] = []
    for item in items:
        began = time.perf_counter()
        await one(item)
        out.append((time.perf_counter() - began) * 1000)
    return out


async def _startup(data: Path, rounds: int) -> dict[str, Any]:
    """Seconds from `start()` to every live server ONLINE, and each server's own share."""
    seconds: list[float] = []
    status: dict[str, str] = {}
    per_server: dict[str, list[float]] = {}
    for _ in range(rounds):
        orch = EnterpriseTaskOrchestrator(config=shipped_config(), data_dir=data)
        with Events("mcp.server.ready") as events:
            began = time.perf_counter()
            try:
                await orch.start()
                seconds.append(time.perf_counter() - began)
                status = live_status(orch)
            finally:
                await orch.close()
        for ready in events.seen.get("mcp.server.ready", []):
            per_server.setdefault(str(ready["server"]), []).append(float(ready["duration_ms"]))
    if any(s != "ONLINE" for s in status.values()):
        seconds = [math.nan for _ in seconds]  # not all up: no start-up figure to give
    return {"startup_s": seconds, "status": status, "server_start_ms": per_server}


async def _ticks(
    orch: EnterpriseTaskOrchestrator, uids: Sequence[str], rounds: int
) -> dict[str, Any]:
    service = ReminderService(orch, _Settled())
    await service.start()
    first = await _timed(range(1), lambda _: service.tick())  # the hourly purge runs in this one
    idle: list[float] = []
    due: list[list[float]] = []
    chat_of = {uid: (await orch.store.get_by_uid(uid)).chat_id for uid in uids}
    # Each step's reminders get a time of their own, strictly older than the last step's:
    # a time reused for the same task would meet its already-sent row and add nothing.
    base = int(time.time()) - 60
    step = 0
    for _ in range(rounds):
        idle.append(percentile(await _timed(range(IDLE_TICKS), lambda _: service.tick()), 99))
        samples: list[float] = []
        for _ in range(DUE_TICKS):
            for k in range(3):
                uid = uids[(step + k) % len(uids)]
                await service.store.snooze(uid, chat_of[uid], base - step)
            step += 1
            began = time.perf_counter()
            claimed = await service.tick()
            samples.append((time.perf_counter() - began) * 1000)
            await service.wait_idle()
            if claimed < 3:
                raise RuntimeError(f"3 reminders were due, the tick claimed {claimed}")
        due.append(samples)
    await service.close()
    return {
        "first_tick_ms": first[0],
        "idle_p99_ms": idle,
        "due_p99_ms": [percentile(s, 99) for s in due],
        "due_p50_ms": [percentile(s, 50) for s in due],
    }


async def _lists(
    orch: EnterpriseTaskOrchestrator, filled: dict[str, Any], rounds: int
) -> dict[str, Any]:
    queries = TaskQueries(orch.store)
    flt = view_filter(View.OPEN, now=datetime.now(UTC), tz=orch.tz)

    async def page(chat: int) -> object:
        return await queries.page(chat, flt)

    out: dict[str, list[float]] = {}
    for r in range(rounds):
        typical = sample(filled["typical_chats"], LIST_SAMPLES, seed=r)
        busy = sample(filled["busy_chats"], LIST_SAMPLES // 3, seed=r)
        for label, chats in (("typical", typical), ("busy", busy)):
            store_ms = await _timed(chats, orch.store.list_tasks)
            page_ms = await _timed(chats, page)
            for key, ms in ((f"store_{label}", store_ms), (f"page_{label}", page_ms)):
                out.setdefault(f"{key}_p50_ms", []).append(percentile(ms, 50))
                out.setdefault(f"{key}_p99_ms", []).append(percentile(ms, 99))
    return out


async def _through_bot(data: Path, filled: dict[str, Any], rounds: int) -> dict[str, Any]:
    """`/list` round trips through the sandbox, and the process's RSS with the bot up."""
    out: dict[str, Any] = {}
    async with TelegramSandbox(token=TOKEN, record_calls=False) as sb:
        began = time.perf_counter()
        async with running_bot(shipped_config(), sb.base_url, TOKEN, data):
            out["bot_ready_s"] = time.perf_counter() - began
            with GcPauses() as pauses:
                for r in range(rounds):
                    for label, pool in (("typical", "typical_chats"), ("busy", "busy_chats")):
                        chats = sample(filled[pool], BOT_SAMPLES, seed=100 + r)
                        ms = await _timed(chats, functools.partial(_ask, sb))
                        out.setdefault(f"bot_{label}_p50_ms", []).append(percentile(ms, 50))
                        out.setdefault(f"bot_{label}_p99_ms", []).append(percentile(ms, 99))
            out["gc_while_asking"] = pauses.summary()
            out["bot_rss_mib"] = own_rss() / MIB
    return out


async def _ask(sb: TelegramSandbox, chat: int) -> None:
    sb.send_text(chat, "/list")
    await sb.wait_for_messages(chat, count=1, timeout=30)


async def child(data: Path, rounds: int) -> dict[str, Any]:
    """Everything measured at one size, in this fresh process."""
    filled = json.loads((data / "filled.json").read_text(encoding="utf-8"))
    setup_logging(data / "logs", console=False)
    out: dict[str, Any] = {"rss_at_start_mib": own_rss() / MIB}
    out |= await _startup(data, rounds)
    async with orchestrator(only(shipped_config(), []), data) as orch:
        out |= await _ticks(orch, filled["open_task_uids"], rounds)
        out |= await _lists(orch, filled, rounds)
        out["rss_core_mib"] = own_rss() / MIB
    out |= await _through_bot(data, filled, rounds)
    return out


def _run_child(data: Path, rounds: int) -> dict[str, Any]:
    command = [sys.executable, "-m", "bench.scale", "--child", str(data), "--rounds", str(rounds)]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=CHILD_LIMIT_S, check=False
    )
    for line in reversed(done.stdout.splitlines()):
        if line.startswith(RESULT_MARK):
            return dict(json.loads(line[len(RESULT_MARK) :]))
    raise RuntimeError(f"scale child failed ({done.returncode}): {done.stderr[-2000:]}")


def _label(size: int) -> str:
    return f"{size // 1_000_000}M" if size >= 1_000_000 else f"{size // 1000}k"


FIGURES: tuple[tuple[str, str, str, float | None], ...] = (
    # (key in the child's result, figure name, unit, target)
    ("idle_p99_ms", "tick p99, nothing due", "ms", 2),
    ("due_p99_ms", "tick p99, 3 due", "ms", 2),
    ("store_typical_p50_ms", "/list store p50, typical chat", "ms", None),
    ("store_typical_p99_ms", "/list store p99, typical chat", "ms", 20),
    ("store_busy_p99_ms", "/list store p99, busy chat", "ms", 20),
    ("page_typical_p99_ms", "/list page query p99, typical", "ms", 20),
    ("page_busy_p99_ms", "/list page query p99, busy chat", "ms", 20),
    ("bot_typical_p50_ms", "/list through bot p50, typical", "ms", None),
    ("bot_typical_p99_ms", "/list through bot p99, typical", "ms", 20),
    ("bot_busy_p99_ms", "/list through bot p99, busy chat", "ms", 20),
    ("startup_s", "start-up to all ONLINE", "s", 3),
    ("bot_rss_mib", "bot process RSS", "MiB", 250),
    ("file_mib", "store file", "MiB", None),
    ("build_s", "bulk fill (not a target)", "s", None),
)


def _figures(report: Report, results: dict[int, dict[str, Any]]) -> None:
    smallest = min(results)
    for key, name, unit, target in FIGURES:
        base = _values(results[smallest], key)
        for size, found in sorted(results.items()):
            values = _values(found, key)
            fig = report.figure(f"{name} @{_label(size)}", unit, target=target)
            fig.baseline_name = f"same @{_label(smallest)}"
            for v in values:
                fig.add(v)
            if base and not all(math.isnan(b) for b in base):
                fig.baselines = [statistics.median(b for b in base if not math.isnan(b))]


def _values(found: dict[str, Any], key: str) -> list[float]:
    value = found.get(key)
    if value is None:
        return []
    return [float(v) for v in value] if isinstance(value, list) else [float(value)]


async def run(quick: bool, rounds: int) -> Report:
    report = Report(NAME)
    sizes = SIZES[quick]
    report.info["sizes"] = ", ".join(_label(s) for s in sizes)
    results: dict[int, dict[str, Any]] = {}
    for size in sizes:
        with scratch(f"{NAME}-{_label(size)}") as data:
            servers = enabled_names(shipped_config())
            filled: Filled = await fill(data / "taskbot.db", size, servers)
            (data / "filled.json").write_text(json.dumps(filled.__dict__), encoding="utf-8")
            found = await asyncio.to_thread(_run_child, data, rounds)
            found |= {k: v for k, v in describe(filled).items() if k in ("build_s", "file_mib")}
            found["rows"] = filled.rows
            results[size] = found
            print(f"  {_label(size)}: filled in {filled.seconds:.0f} s, measured", flush=True)
    report.details["by_size"] = {_label(s): r for s, r in results.items()}
    report.info["servers at start-up"] = ", ".join(
        f"{k}={v}" for k, v in results[sizes[0]]["status"].items()
    )
    _figures(report, results)
    for server, ms in results[sizes[0]].get("server_start_ms", {}).items():
        report.figure(f"start-up of {server}, all at once @{_label(sizes[0])}", "ms").values += ms
    return report


def main() -> None:
    """Child mode: measure the store in DIR and print one result line."""
    parser = argparse.ArgumentParser(prog="python -m bench.scale")
    parser.add_argument("--child", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    found = asyncio.run(child(args.child, args.rounds))
    print(RESULT_MARK + json.dumps(found, default=float), flush=True)


if __name__ == "__main__":
    main()
