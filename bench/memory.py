"""Resident memory of the bot process and of each MCP server, idle and under load.

The whole bot runs (Runtime with the shipped config, against the in-process sandbox). Idle
is measured after start-up has settled; load is `/new` quick-adds from many chats offered
at a fixed rate, through the dispatcher, the store and the fan-out to every server, with
RSS sampled every `SAMPLE_S` until the outbox is empty again; "after" is once it is.
A server's figure is its process tree (an npm launcher and its node, or git's children).
Floor: the RSS of a bare interpreter that imported aiogram and the MCP SDK, measured in a
child process in the same run: what any bot on this stack pays before holding anything.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from typing import Any, cast

from bench.report import Report
from bench.rig import (
    MIB,
    offer,
    own_rss,
    processes,
    running_bot,
    scratch,
    shipped_config,
    tree_rss,
    until_drained,
)
from bot.sandbox import TelegramSandbox
from core.orchestrator import EnterpriseTaskOrchestrator

NAME = "memory"
ROUNDS = 1  # one start, one load: the peaks barely move between runs
TOKEN = "4444:bench-memory-token"
TASKS = 500
RATE = 50.0  # quick-adds per second offered; at 10 per chat, far under the rate limit
CHATS = 50
SAMPLE_S = 0.1
SETTLE_S = 2.0  # after start-up and after the drain, before "idle" is read
DRAIN_CAP_S = 180.0
FLOOR_SCRIPT = (
    "import aiogram, aiohttp, mcp, pydantic, psutil; "
    "from aiogram import Bot, Dispatcher; from mcp.client.session import ClientSession; "
    "print(psutil.Process().memory_info().rss)"
)


def _snapshot(orch: EnterpriseTaskOrchestrator) -> dict[str, float]:
    out = {"bot": own_rss() / MIB}
    out |= {name: tree_rss(pid) / MIB for name, pid in processes(orch).items()}
    return out


def _floor_rss() -> float:
    done = subprocess.run(
        [sys.executable, "-c", FLOOR_SCRIPT], capture_output=True, text=True, check=True
    )
    return int(done.stdout.strip()) / MIB


async def _round(quick: bool) -> dict[str, Any]:
    n = 100 if quick else TASKS
    async with TelegramSandbox(token=TOKEN, record_calls=False) as sb:
        with scratch(NAME) as data:
            async with running_bot(shipped_config(), sb.base_url, TOKEN, data) as runtime:
                orch = runtime.orch
                assert orch is not None
                await asyncio.sleep(SETTLE_S)
                idle = _snapshot(orch)
                peak, load_s, drain_s = await _load(sb, orch, n)
                await asyncio.sleep(SETTLE_S)
                after = _snapshot(orch)
                stats = cast(dict[str, dict[str, Any]], orch.get_statistics()["servers"])
    return {
        "tasks": n,
        "idle_mib": idle,
        "peak_mib": peak,
        "after_mib": after,
        "load_s": round(load_s, 2),
        "drain_s": round(drain_s, 2),
        "calls_ok": {k: v["successes"] for k, v in stats.items()},
    }


async def _load(
    sb: TelegramSandbox, orch: EnterpriseTaskOrchestrator, n: int
) -> tuple[dict[str, float], float, float]:
    """Quick-adds at RATE; peak RSS per process until every reply came and the outbox emptied."""
    peak: dict[str, float] = {}
    stop = asyncio.Event()

    async def watch() -> None:
        while not stop.is_set():
            for name, mib in _snapshot(orch).items():
                peak[name] = max(peak.get(name, 0.0), mib)
            await asyncio.sleep(SAMPLE_S)

    async def one(i: int) -> None:
        sb.send_text(3000 + i % CHATS, f"/new Order spare parts for line {i} tomorrow 10:00 #ops")

    watcher = asyncio.create_task(watch())
    began = time.perf_counter()
    await offer(n, RATE, one)
    for chat in range(3000, 3000 + CHATS):
        await sb.wait_for_messages(chat, count=len(range(chat - 3000, n, CHATS)), timeout=120)
    load_s = time.perf_counter() - began
    if orch.metrics.tasks_created < n:
        raise RuntimeError(f"only {orch.metrics.tasks_created} of {n} quick-adds made a task")
    drained = time.perf_counter()
    await until_drained(orch, within=DRAIN_CAP_S, poll=0.2)
    stop.set()
    await watcher
    return peak, load_s, time.perf_counter() - drained


async def run(quick: bool, rounds: int) -> Report:
    report = Report(NAME)
    report.info["load"] = f"{100 if quick else TASKS} /new at {RATE:g}/s from {CHATS} chats"
    floor = _floor_rss()
    report.info["floor"] = f"bare interpreter with aiogram + MCP SDK imported: {floor:.0f} MiB"
    found = [await _round(quick) for _ in range(rounds)]
    report.details["rounds"] = found
    for r in found:
        for name in r["idle_mib"]:
            target = 250 if name == "bot" else None
            floor_of = floor if name == "bot" else None
            report.figure(f"{name} RSS idle", "MiB", target=target, baseline_name="bare").add(
                r["idle_mib"][name], floor_of
            )
            report.figure(f"{name} RSS peak under load", "MiB", target=target).add(
                r["peak_mib"].get(name, float("nan"))
            )
            report.figure(f"{name} RSS after load", "MiB", target=target).add(
                r["after_mib"].get(name, float("nan"))
            )
        servers = [k for k in r["peak_mib"] if k != "bot"]
        report.figure("all servers RSS peak", "MiB").add(sum(r["peak_mib"][k] for k in servers))
    return report
