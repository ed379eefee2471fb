"""Task creation through the orchestrator with every server the shipped config enables.

Three load shapes per round, on one orchestrator with fresh data:
- light: tasks offered at 5/s, so each fan-out runs nearly alone: the pipeline's own latency;
- paced: 500 tasks offered at 100/s (the target rate), open loop;
- flat out: 500 tasks from 8 callers that each create the next as soon as theirs returns.
"Reply" is the time `create_task` takes (the user's answer waits for it). "All servers" is,
per task, from the call to the moment its last outbox row was marked done, read back from
the outbox's own timestamps, so measuring adds no polling to the run. "Synced/s" is tasks
over the time from the first create to an empty outbox: the rate the system can sustain.
Floors, measured in the same round: one bare WAL transaction (reply), and the same number
of MCP calls per server to the tests' `echo` server over the same stdio transport.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bench.report import Report, pcts, percentile
from bench.rig import (
    CallCounter,
    EchoFloor,
    EchoLanes,
    GcPauses,
    SqlCounter,
    cpu_delta,
    cpu_snapshot,
    enabled_names,
    flat_out,
    live_status,
    offer,
    orchestrator,
    scratch,
    shipped_config,
    sqlite_floor,
    until_drained,
)
from core.metrics import Metrics
from core.orchestrator import EnterpriseTaskOrchestrator

NAME = "creation"
ROUNDS = 3  # repeats of every measurement in a full run; --quick makes it 1
TASKS = 500  # per loaded phase, as the issue asks
LIGHT_TASKS = 100
TARGET_RATE = 100.0  # tasks/s offered in the paced phase: the specification's target
LIGHT_RATE = 5.0  # low enough that fan-outs rarely overlap
FLAT_WORKERS = 8
DRAIN_CAP_S = 240.0  # bounds one phase if a server cannot keep up at all
CHATS = 50
FLOOR_CONCURRENCY = 4  # callers per echo lane in the loaded floors; more adds nothing here


@dataclass
class Phase:
    """What one load shape produced."""

    label: str
    tasks: int
    offer_s: float
    drain_s: float
    backlog: dict[str, int]
    left: dict[str, int]
    reply_ms: list[float]
    all_ms: list[float]
    tier_ms: dict[int, list[float]]
    server_ms: dict[str, list[float]]
    calls: dict[str, int]
    cpu_s: dict[str, float]
    stats: dict[str, Any]
    unsynced: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def total_s(self) -> float:
        return self.offer_s + self.drain_s

    def summary(self) -> dict[str, Any]:
        return {
            "tasks": self.tasks,
            "offer_s": round(self.offer_s, 3),
            "drain_s": round(self.drain_s, 3),
            "accepted_per_s": round(self.tasks / self.offer_s, 1),
            "synced_per_s": round(self.tasks / self.total_s, 1),
            "backlog_rows_at_end_of_offer": self.backlog,
            "rows_left_after_cap": self.left,
            "unsynced_tasks": self.unsynced,
            "reply_ms": pcts(self.reply_ms),
            "all_servers_ms": pcts(self.all_ms),
            "tier_ms": {str(k): pcts(v) for k, v in sorted(self.tier_ms.items())},
            "server_in_pipeline_ms": {k: pcts(v) for k, v in self.server_ms.items()},
            "mcp_calls": self.calls,
            "mcp_calls_per_task": {k: round(v / self.tasks, 2) for k, v in self.calls.items()},
            "cpu_s": self.cpu_s,
            "cpu_ms_per_task": {k: round(v * 1000 / self.tasks, 2) for k, v in self.cpu_s.items()},
            "get_statistics": self.stats,
            **self.extra,
        }


def _draft(i: int) -> dict[str, Any]:
    """A realistic task: a title, a sentence, two tags, a deadline on every other one."""
    return {
        "title": f"Prepare quarterly report section {i}",
        "description": "Collect the figures from finance and draft the summary paragraph.",
        "priority": 1 + i % 5,
        "tags": ["work", f"team{i % 7}"],
        "deadline": f"2031-0{1 + i % 9}-1{i % 10}T12:00:00" if i % 2 == 0 else None,
        "chat_id": 1000 + i % CHATS,
    }


async def _phase(
    orch: EnterpriseTaskOrchestrator,
    counter: CallCounter,
    sql: SqlCounter,
    label: str,
    n: int,
    *,
    rate: float | None = None,
    workers: int = FLAT_WORKERS,
) -> Phase:
    orch.metrics = Metrics()  # per-phase statistics; the orchestrator reads it on each use
    calls0, cpu0, sql0 = counter.snapshot(), cpu_snapshot(orch), sql.count
    stamps: dict[str, float] = {}
    replies: list[float] = []

    async def one(i: int) -> None:
        draft = _draft(i)
        wall = time.time()
        began = time.perf_counter()
        task = await orch.create_task(
            draft["title"],
            draft["description"],
            draft["priority"],
            deadline=draft["deadline"],
            tags=draft["tags"],
            chat_id=draft["chat_id"],
        )
        replies.append((time.perf_counter() - began) * 1000)
        stamps[task.uid] = wall

    with GcPauses() as pauses:
        offer_s = await (offer(n, rate, one) if rate else flat_out(n, workers, one))
        backlog = await orch.outbox_depth()
        drain_s, left = await until_drained(orch, within=DRAIN_CAP_S)
    stats = orch.get_statistics()
    all_ms, tier_ms, server_ms, unsynced = await _timeline(orch, stamps)
    calls = {k: v - calls0.get(k, 0) for k, v in counter.snapshot().items()}
    return Phase(
        label=label,
        tasks=n,
        offer_s=offer_s,
        drain_s=drain_s,
        backlog=backlog,
        left=left,
        reply_ms=replies,
        all_ms=all_ms,
        tier_ms=tier_ms,
        server_ms=server_ms,
        calls=calls,
        cpu_s=cpu_delta(cpu0, cpu_snapshot(orch)),
        stats=stats,
        unsynced=unsynced,
        extra={"gc": pauses.summary(), "sql_statements_per_task": (sql.count - sql0) / n},
    )


async def _timeline(
    orch: EnterpriseTaskOrchestrator, stamps: Mapping[str, float]
) -> tuple[list[float], dict[int, list[float]], dict[str, list[float]], int]:
    """Per task: call to last row done; per tier and server: time after the tier before."""
    rows = await orch.store.db.execute_fetchall(
        "SELECT task_uid, server, state, updated_at FROM outbox WHERE op='create'"
    )
    by_task: dict[str, dict[str, tuple[str, float]]] = {}
    for uid, server, state, updated in rows:
        if uid in stamps:
            at = datetime.fromisoformat(str(updated)).timestamp()
            by_task.setdefault(str(uid), {})[str(server)] = (str(state), at)
    tier_of = {n: orch.config.servers[n].priority for n in orch.integrations}
    all_ms: list[float] = []
    tier_ms: dict[int, list[float]] = {}
    server_ms: dict[str, list[float]] = {}
    unsynced = 0
    for uid, wall in stamps.items():
        done = by_task.get(uid, {})
        if len(done) < len(tier_of) or any(s != "done" for s, _ in done.values()):
            unsynced += 1
            continue
        all_ms.append((max(at for _, at in done.values()) - wall) * 1000)
        previous = wall
        for tier in sorted(set(tier_of.values())):
            ends = {s: done[s][1] for s in done if tier_of[s] == tier}
            for server, at in ends.items():
                server_ms.setdefault(server, []).append((at - previous) * 1000)
            end = max(ends.values())
            tier_ms.setdefault(tier, []).append((end - previous) * 1000)
            previous = end
    return all_ms, tier_ms, server_ms, unsynced


def _chain_floor(
    calls_per_task: Mapping[str, float], tiers: Mapping[str, int], echo_p50: float
) -> float:
    """The least a fan-out could take: tiers in turn, each as long as its busiest server."""
    total = 0.0
    for tier in sorted(set(tiers.values())):
        total += max(calls_per_task.get(s, 0.0) * echo_p50 for s in tiers if tiers[s] == tier)
    return total


async def _round(quick: bool, report: Report, number: int) -> dict[str, Any]:
    n = 100 if quick else TASKS
    light_n = 30 if quick else LIGHT_TASKS
    config = shipped_config()
    with scratch(NAME) as data:
        counter = CallCounter()
        began = time.perf_counter()
        async with orchestrator(config, data) as orch:
            start_s = time.perf_counter() - began
            status = live_status(orch)
            report.info["enabled in config"] = ", ".join(enabled_names(config))
            report.info["running"] = ", ".join(f"{k}={v}" for k, v in status.items())
            report.info["disabled"] = ", ".join(n for n in config.servers if n not in status)
            counter.attach(orch)
            sql = SqlCounter()
            sql.attach(orch)
            tiers = {s: config.servers[s].priority for s in orch.integrations}
            light = await _phase(orch, counter, sql, "light", light_n, rate=LIGHT_RATE)
            paced = await _phase(orch, counter, sql, "paced", n, rate=TARGET_RATE)
            flat = await _phase(orch, counter, sql, "flat", n)
        floor_reply = await sqlite_floor(data / "floor.db", n, len(tiers))
        async with EchoLanes(tiers) as lanes:
            floor_light = await lanes.run(light.calls)
            floor_paced = await lanes.run(paced.calls, concurrency=FLOOR_CONCURRENCY)
            floor_flat = await lanes.run(flat.calls, concurrency=FLOOR_CONCURRENCY)
    echo_p50 = percentile(floor_light.latencies_ms, 50)
    chain = _chain_floor({s: c / light.tasks for s, c in light.calls.items()}, tiers, echo_p50)
    _figures(report, light, paced, flat, floor_reply, echo_p50, chain, (floor_paced, floor_flat))
    return {
        "round": number,
        "startup_s": round(start_s, 3),
        "tiers": tiers,
        "phases": {p.label: p.summary() for p in (light, paced, flat)},
        "floors": {
            "sqlite_tx_ms": pcts(floor_reply),
            "echo_call_ms": pcts(floor_light.latencies_ms),
            "echo_chain_ms_per_task": round(chain, 3),
            "echo_wall_s": {
                "light": round(floor_light.wall_s, 3),
                "paced": round(floor_paced.wall_s, 3),
                "flat": round(floor_flat.wall_s, 3),
            },
        },
    }


def _figures(
    report: Report,
    light: Phase,
    paced: Phase,
    flat: Phase,
    floor_reply: list[float],
    echo_p50: float,
    chain: float,
    floors: tuple[EchoFloor, EchoFloor],
) -> None:
    tx = "bare WAL tx"
    for phase, at in ((light, "@5/s"), (paced, "@100/s"), (flat, "flat out")):
        for q, target in ((50, 5), (99, 20)):
            report.figure(f"reply p{q} {at}", "ms", target=target, baseline_name=tx).add(
                percentile(phase.reply_ms, q), percentile(floor_reply, q)
            )
    for phase, at in ((light, "@5/s"), (paced, "@100/s")):
        report.figure(
            f"all servers have it p50 {at}", "ms", target=100, baseline_name="echo chain"
        ).add(percentile(phase.all_ms, 50), chain)
        report.figure(f"all servers have it p99 {at}", "ms").add(percentile(phase.all_ms, 99))
    for phase, floor, at in ((paced, floors[0], "100/s offered"), (flat, floors[1], "flat out")):
        report.figure(f"accepted/s {at}", "tasks/s", better="higher").add(
            phase.tasks / phase.offer_s
        )
        report.figure(
            f"synced/s {at}",
            "tasks/s",
            target=100,
            better="higher",
            baseline_name="echo, same calls",
        ).add(phase.tasks / phase.total_s, phase.tasks / floor.wall_s)
        report.figure(f"backlog at end of offer, {at}", "rows").add(sum(phase.backlog.values()))
    for server, summary in light.stats["servers"].items():
        latency = summary["latency_ms"]
        report.figure(f"{server} call p50 @5/s", "ms", baseline_name="echo call").add(
            latency["p50"], echo_p50
        )
        report.figure(f"{server} call p99 @5/s", "ms").add(latency["p99"])
    for server, summary in paced.stats["servers"].items():
        report.figure(f"{server} call p50 @100/s", "ms").add(summary["latency_ms"]["p50"])
    for tier, samples in sorted(light.tier_ms.items()):
        report.figure(f"tier {tier} p50 @5/s", "ms").add(percentile(samples, 50))
    report.figure("SQL statements per task @5/s", "stmts").add(
        light.extra["sql_statements_per_task"]
    )
    report.figure("MCP calls per task @5/s", "calls").add(sum(light.calls.values()) / light.tasks)
    for who, seconds in paced.cpu_s.items():
        report.figure(f"CPU per task, {who} @100/s", "ms").add(seconds * 1000 / paced.tasks)


async def run(quick: bool, rounds: int) -> Report:
    report = Report(NAME)
    report.info["tasks per loaded phase"] = 100 if quick else TASKS
    report.details["rounds"] = [await _round(quick, report, r + 1) for r in range(rounds)]
    report.details["startup_s"] = statistics.median(
        r["startup_s"] for r in report.details["rounds"]
    )
    return report
