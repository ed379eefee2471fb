"""Recovery: a 10,000-row outbox backlog for one server drains at what rate once it returns.

For each server the shipped config enables, alone (so no other server's rows share the
drain): start the orchestrator, force that server's breaker open (threshold failures, with
a cooldown longer than the run), create the tasks through `create_task` as users would;
each fan-out meets the open breaker and leaves its row pending. Then close the breaker, as
a successful probe does, which starts the orchestrator's own `sync(server=...)`; the figure
is rows drained over the time until the outbox is empty. A drain that would take longer
than `DRAIN_CAP_S` is cut there and reported at the rate it reached.
Floor: the same number of MCP calls, by as many concurrent callers as the sync job uses,
to the tests' `echo` server over the same stdio transport.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any, cast

from bench.report import Report, pcts
from bench.rig import (
    CallCounter,
    EchoLanes,
    cpu_delta,
    cpu_snapshot,
    enabled_names,
    flat_out,
    only,
    orchestrator,
    scratch,
    shipped_config,
)
from core.metrics import Metrics
from core.orchestrator import SYNC_CONCURRENCY, EnterpriseTaskOrchestrator

NAME = "recovery"
ROUNDS = 1  # repeats of every measurement in a full run; --quick makes it 1
BACKLOG = 10_000
#: Per server, full and --quick; a slower drain is reported at the rate it reached.
DRAIN_CAP_S = {False: 90.0, True: 20.0}
BUILD_CAP_S = 300.0
CREATORS = 8
BREAKER_HOLD_S = 24 * 3600.0  # the breaker stays open while the backlog builds
TARGET_ROWS_PER_S = 500


async def _backlog(orch: EnterpriseTaskOrchestrator, server: str, n: int) -> float:
    """Create `n` tasks while `server`'s breaker is open; seconds until all rows are pending."""
    breaker = orch.breakers[server]
    for _ in range(breaker.threshold):
        breaker.record_failure()

    async def one(i: int) -> None:
        await orch.create_task(
            f"Task created during the {server} outage, number {i}",
            "Written while the server was away; must reach it once it is back.",
            chat_id=2000 + i % 100,
            tags=["outage"],
        )

    began = time.perf_counter()
    await flat_out(n, CREATORS, one)
    # Every fan-out meets the open breaker once; wait until each has, so the drain is alone.
    while orch.metrics.server(server).error_count < n:
        if time.perf_counter() - began > BUILD_CAP_S:
            break
        await asyncio.sleep(0.05)
    return time.perf_counter() - began


async def _drain(orch: EnterpriseTaskOrchestrator, server: str, cap: float) -> dict[str, Any]:
    """Close the breaker (the orchestrator starts its sync) and watch the depth fall."""
    start_depth = (await orch.outbox_depth()).get(server, 0)
    orch.metrics = Metrics()
    cpu0 = cpu_snapshot(orch)
    curve: list[tuple[float, int]] = []
    began = time.perf_counter()
    orch.breakers[server].record_success()  # CLOSED: the orchestrator spawns sync(server)
    depth = start_depth
    while depth and time.perf_counter() - began < cap:
        await asyncio.sleep(0.25)
        depth = (await orch.outbox_depth()).get(server, 0)
        curve.append((round(time.perf_counter() - began, 2), depth))
    elapsed = time.perf_counter() - began
    drained = start_depth - depth
    stats = cast(dict[str, dict[str, Any]], orch.get_statistics()["servers"])
    return {
        "start_depth": start_depth,
        "drained": drained,
        "left": depth,
        "seconds": round(elapsed, 2),
        "rows_per_s": drained / elapsed if elapsed else 0.0,
        "first_half_rows_per_s": _rate(curve, start_depth, 0.0, elapsed / 2),
        "second_half_rows_per_s": _rate(curve, start_depth, elapsed / 2, elapsed),
        "projected_full_drain_s": round(start_depth / (drained / elapsed), 1) if drained else None,
        "call_latency_ms": stats.get(server, {}).get("latency_ms"),
        "cpu_s": cpu_delta(cpu0, cpu_snapshot(orch)),
        "depth_curve": curve[:: max(1, len(curve) // 40)],
    }


def _rate(curve: list[tuple[float, int]], start: int, t0: float, t1: float) -> float | None:
    """Rows per second between two moments, read off the depth curve."""
    before = [d for t, d in curve if t <= t0] or [start]
    after = [d for t, d in curve if t <= t1]
    if not after or t1 <= t0:
        return None
    return round((before[-1] - after[-1]) / (t1 - t0), 1)


async def _one_server(server: str, n: int, cap: float) -> dict[str, Any]:
    config = only(shipped_config(), [server], circuit_breaker_cooldown=BREAKER_HOLD_S)
    with scratch(f"{NAME}-{server}") as data:
        async with orchestrator(config, data) as orch:
            if server not in orch.integrations:
                return {"skipped": "no integration module for this server"}
            counter = CallCounter()
            counter.attach(orch)
            build_s = await _backlog(orch, server, n)
            before = counter.snapshot()
            drained = await _drain(orch, server, cap)
            calls = counter.snapshot()[server] - before[server]
        async with EchoLanes([server]) as lanes:
            floor = await lanes.run({server: calls}, concurrency=SYNC_CONCURRENCY)
    drained |= {
        "backlog_build_s": round(build_s, 1),
        "mcp_calls": calls,
        "mcp_calls_per_row": round(calls / drained["drained"], 2) if drained["drained"] else None,
        "floor_wall_s": round(floor.wall_s, 3),
        "floor_call_ms": pcts(floor.latencies_ms),
        # No MCP call at all (the change means nothing to this server): no floor to compare.
        "floor_rows_per_s": drained["drained"] / floor.wall_s if calls else None,
    }
    return drained


async def run(quick: bool, rounds: int) -> Report:
    report = Report(NAME)
    n = 500 if quick else BACKLOG
    cap = DRAIN_CAP_S[quick]
    servers = enabled_names(shipped_config())
    report.info["backlog rows per server"] = n
    report.info["servers"] = ", ".join(servers)
    report.info["rounds"] = f"{rounds} (each round rebuilds every backlog)"
    by_server: dict[str, list[dict[str, Any]]] = {}
    for _ in range(rounds):
        for server in servers:
            found = await _one_server(server, n, cap)
            by_server.setdefault(server, []).append(found)
            if "skipped" in found:
                continue
            note = "" if not found["left"] else f"cut at {cap:.0f} s, {found['left']} left"
            if not found["mcp_calls"]:
                note = "no MCP call for these tasks: the core's own cost per row"
            report.figure(
                f"{server} drain",
                "rows/s",
                target=TARGET_ROWS_PER_S,
                better="higher",
                baseline_name="echo, same calls",
                note=note,
            ).add(found["rows_per_s"], found["floor_rows_per_s"])
            cpu = found["cpu_s"]
            if found["drained"]:
                report.figure(f"{server} CPU per row, bot", "ms").add(
                    cpu["bot"] * 1000 / found["drained"]
                )
                report.figure(f"{server} CPU per row, server", "ms").add(
                    cpu.get(server, 0.0) * 1000 / found["drained"]
                )
            print(f"  {server}: {found['rows_per_s']:.0f} rows/s", flush=True)
    report.details["by_server"] = by_server
    return report
