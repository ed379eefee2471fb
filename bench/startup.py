"""Start-up: `orchestrator.start()` with the shipped config until every server is up and working.

Two moments are timed from `start()`: every server ONLINE (what `start()` waits for: the
handshake and the tool list), and every server having answered one real, read-only tool call
(`READ_CALLS`, issued as soon as `start()` returns; the semantic memory's waits for its
model). Each round does both start-ups: Python servers forked from the fork server (the
default) and every server spawned cold (`TASKBOT_FORK_SERVERS=0`), in alternating order, on
one data directory that a first, uncounted start-up has initialised.

Baselines, measured in every round: a bare interpreter (`python -c pass`) spawned and reaped,
and one trivial MCP server (the tests' `echo` fixture) spawned, initialised and called once:
the least any one Python server on this SDK can cost. CPU seconds per process of each
start-up (bot, fork server, each server's process tree, Radicale) go to the JSON.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import psutil

from bench.report import Report
from bench.rig import (
    Events,
    echo_handle,
    live_status,
    processes,
    scratch,
    shipped_config,
    tree_cpu,
)
from core.orchestrator import EnterpriseTaskOrchestrator
from integrations.mcp.launch import FORK_SWITCH

NAME = "startup"
ROUNDS = 5
TARGET_S = 3.0
CALL_TIMEOUT_S = 60.0
MODES = ("forked", "cold")
#: One cheap read-only tool per server: the call that shows it does real work.
READ_CALLS: Mapping[str, tuple[str, dict[str, Any]]] = {
    "deltatask": ("get_statistics", {}),
    "shrimp-task-manager": ("query_task", {"query": "bench-startup", "pageSize": 1}),
    "hpkv-memory": ("get_stats", {}),
    "memory": ("search_nodes", {"query": "bench-startup"}),
    "calendar": ("list-calendars", {}),
    "notifications": ("list_notifications", {}),
    "time-tracker": ("list_entries", {"limit": 1}),
    "git": ("git_status", {}),  # repo_path added from the integration
    "filesystem": ("list_allowed_directories", {}),
    "backup": ("list_backups", {"limit": 1}),
}


@contextlib.contextmanager
def _mode(mode: str) -> Iterator[None]:
    """Handles are made in `start()`; the switch is read there."""
    before = os.environ.get(FORK_SWITCH)
    os.environ[FORK_SWITCH] = "1" if mode == "forked" else "0"
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(FORK_SWITCH, None)
        else:
            os.environ[FORK_SWITCH] = before


def _read_call(orch: EnterpriseTaskOrchestrator, name: str) -> tuple[str, dict[str, Any]]:
    tool, arguments = READ_CALLS[name]
    if name == "git":
        arguments = {"repo_path": str(getattr(orch.integrations[name], "repo", ""))}
    return tool, arguments


async def _called(orch: EnterpriseTaskOrchestrator, name: str, began: float) -> float:
    """Seconds from `began` until this server answered its read call."""
    tool, arguments = _read_call(orch, name)
    handle = getattr(orch.integrations[name], "handle", None)
    assert handle is not None, f"{name} has no handle"
    await handle.call(tool, arguments, timeout=CALL_TIMEOUT_S)
    return time.perf_counter() - began


def _own_cpu(pid: int) -> float:
    with contextlib.suppress(psutil.Error):
        t = psutil.Process(pid).cpu_times()
        return float(t.user + t.system)
    return 0.0


def _cpu(orch: EnterpriseTaskOrchestrator) -> dict[str, float]:
    """CPU seconds so far of every process the start-up made (servers still running)."""
    return {name: round(tree_cpu(pid), 3) for name, pid in processes(orch).items()}


async def _start_up(data: Path, mode: str) -> dict[str, Any]:
    """One start-up in `mode`: the two moments, each server's own, CPU, then closed."""
    bot_cpu = _own_cpu(os.getpid())
    with _mode(mode), Events("mcp.server.ready") as events:
        orch = EnterpriseTaskOrchestrator(config=shipped_config(), data_dir=data)
        try:
            began = time.perf_counter()
            await orch.start()
            online = time.perf_counter() - began
            names = sorted(orch.integrations)
            called = await asyncio.gather(*(_called(orch, n, began) for n in names))
            status = live_status(orch)
            cpu = _cpu(orch) | {"bot": round(_own_cpu(os.getpid()) - bot_cpu, 3)}
        finally:
            await orch.close()
    if any(s != "ONLINE" for s in status.values()):
        raise RuntimeError(f"not every server came up ({mode}): {status}")
    ready = {str(e["server"]): float(e["duration_ms"]) for e in events.seen["mcp.server.ready"]}
    return {
        "online_s": online,
        "called_s": max(called),
        "called_s_by_server": dict(zip(names, (round(c, 3) for c in called), strict=True)),
        "ready_ms_by_server": ready,
        "cpu_s": cpu,
        "cpu_s_total": round(sum(cpu.values()), 3),
        "load1": os.getloadavg()[0],
    }


async def _bare_interpreter() -> float:
    began = time.perf_counter()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-c", "pass", stdin=asyncio.subprocess.DEVNULL
    )
    await process.wait()
    return time.perf_counter() - began


async def _trivial_server() -> float:
    """Spawn, initialise and call once the smallest MCP server on this SDK."""
    handle = echo_handle("bench-startup-echo")
    began = time.perf_counter()
    try:
        await handle.start()
        await handle.call("echo", {"text": "x"}, timeout=CALL_TIMEOUT_S)
        return time.perf_counter() - began
    finally:
        await handle.close()


async def run(quick: bool, rounds: int) -> Report:
    report = Report(NAME)
    report.info["modes"] = (
        "forked: Python servers forked from the fork server; cold: every server spawned cold"
    )
    found: list[dict[str, Any]] = []
    with scratch(NAME) as data:
        await _start_up(data, "forked")  # first start: server state, git init, caches
        for r in range(rounds):
            bare = await _bare_interpreter()
            trivial = await _trivial_server()
            order = MODES if r % 2 == 0 else MODES[::-1]
            by_mode = {mode: await _start_up(data, mode) for mode in order}
            found.append({"bare_s": bare, "trivial_server_s": trivial, **by_mode})
            print(
                f"  round {r + 1}: forked {by_mode['forked']['called_s']:.2f} s, "
                f"cold {by_mode['cold']['called_s']:.2f} s, load {os.getloadavg()[0]:.1f}",
                flush=True,
            )
    report.details["rounds"] = found
    _figures(report, found)
    return report


def _figures(report: Report, found: list[dict[str, Any]]) -> None:
    trivial = "one trivial MCP server"
    for mode in MODES:
        target = TARGET_S if mode == "forked" else None
        online = report.figure(f"start-up to all ONLINE, {mode}", "s", baseline_name=trivial)
        called = report.figure(
            f"start-up to all answered a tool call, {mode}",
            "s",
            target=target,
            baseline_name=trivial,
        )
        cpu = report.figure(f"CPU of start-up, all processes, {mode}", "s")
        for r in found:
            online.add(r[mode]["online_s"], r["trivial_server_s"])
            called.add(r[mode]["called_s"], r["trivial_server_s"])
            cpu.add(r[mode]["cpu_s_total"])
    report.figure("one trivial MCP server: spawn, initialise, one call", "s").values += [
        r["trivial_server_s"] for r in found
    ]
    report.figure("bare interpreter: spawn and exit", "s").values += [r["bare_s"] for r in found]
    report.figure("load average (1 min) after each start-up", "").values += [
        r[m]["load1"] for r in found for m in MODES
    ]
    for server in READ_CALLS:
        fig = report.figure(f"{server}: answered its tool call, forked", "s")
        fig.values += [r["forked"]["called_s_by_server"].get(server, float("nan")) for r in found]


if __name__ == "__main__":
    from bench.__main__ import main

    raise SystemExit(main([NAME]))
