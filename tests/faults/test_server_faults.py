"""Servers that die, hang or lie: nothing acknowledged is lost, nothing is duplicated."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from typing import Any

import psutil
import pytest

from core.models import OutboxState, ServerStatus, TaskStatus
from core.resilience import BreakerState
from integrations.deltatask import DeltaTaskIntegration
from integrations.mcp import McpIntegration
from integrations.memory import MemoryIntegration, task_entity
from tests.faults.conftest import FIXTURE_SERVER, OrchFactory, drain, fault_config, no_sleep

BURST = 200


async def _graph_names(memory: MemoryIntegration) -> list[str]:
    graph: dict[str, Any] = await memory.handle.call("read_graph", {}, timeout=30)  # type: ignore[assignment]
    return [e["name"] for e in graph.get("entities", [])]


async def _deltatask_refs(deltatask: DeltaTaskIntegration) -> list[str]:
    rows = await deltatask.list_tasks(include_completed=True)
    return [r.get("external_ref") for r in rows]


# memory is a node process the bot spawns; deltatask a Python one forked by the fork server.
@pytest.mark.parametrize("victim", ["memory", "deltatask"])
async def test_kill_9_of_a_server_during_a_burst_loses_and_duplicates_nothing(
    orchestrator: OrchFactory, victim: str
) -> None:
    orch = await orchestrator(fault_config(("deltatask", "memory")), sleep=no_sleep)
    memory = orch.integrations["memory"]
    assert isinstance(memory, MemoryIntegration)
    killed = orch.integrations[victim]
    assert isinstance(killed, McpIntegration)
    first_pid = killed.handle.pid
    assert first_pid is not None

    uids = []
    for i in range(BURST):
        task = await orch.create_task(f"burst task {i}", tags=["burst"])
        uids.append(task.uid)
        if i == BURST // 4:
            os.kill(first_pid, signal.SIGKILL)
        await asyncio.sleep(0)  # let fan-outs interleave with the burst, as live traffic does
    recovered_in = await drain(orch)

    names = await _graph_names(memory)
    deltatask = orch.integrations["deltatask"]
    assert isinstance(deltatask, DeltaTaskIntegration)
    refs = await _deltatask_refs(deltatask)
    for uid in uids:
        assert names.count(task_entity(uid)) == 1, (
            f"{uid} on memory {names.count(task_entity(uid))}x"
        )
        assert refs.count(uid) == 1, f"{uid} on deltatask {refs.count(uid)}x"
    assert killed.handle.restarts >= 1
    assert killed.handle.pid != first_pid
    assert not psutil.pid_exists(first_pid) or psutil.Process(first_pid).status() == "zombie"
    print(
        f"\nkill -9 of {victim} in a burst: {BURST} sent, 0 lost, 0 duplicated, "
        f"drained in {recovered_in:.2f}s"
    )


class _Clock:
    """The breakers' clock, moved by the test instead of waited for."""

    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_a_hung_server_times_out_opens_the_breaker_and_drains_after_recovery(
    orchestrator: OrchFactory,
) -> None:
    config = fault_config(
        ("deltatask", "memory"),
        overrides={"memory": {"timeout": 0.3, "retry_attempts": 0}},
        cooldown=30,
    )
    clock = _Clock()
    orch = await orchestrator(config, sleep=no_sleep, clock=clock)
    memory = orch.integrations["memory"]
    assert isinstance(memory, MemoryIntegration)
    pid = memory.handle.pid
    assert pid is not None
    os.kill(pid, signal.SIGSTOP)  # the process lives but answers nothing: a hang
    uids, replies = [], []
    try:
        uids += [(await orch.create_task(f"during hang {i}")).uid for i in range(8)]
        for _ in range(100):
            if orch.breakers["memory"].state is BreakerState.OPEN:
                break
            await asyncio.sleep(0.1)
        assert orch.breakers["memory"].state is BreakerState.OPEN
        for i in range(3):
            began = time.perf_counter()
            task = await orch.create_task(f"while the breaker is open {i}")
            replies.append(time.perf_counter() - began)
            uids.append(task.uid)
            await orch.wait_synced(task.uid, within=0.5)
        assert max(replies) < 1.0, "users must keep getting answers while a server hangs"
        assert (await orch.outbox_depth())["memory"] == len(uids)
        stats = orch.get_statistics()["servers"]["memory"]  # type: ignore[index]
        assert stats["errors_by_kind"]["unavailable"] >= 5
        assert stats["errors_by_kind"]["breaker_open"] >= 3
        await orch.check_health()
        assert orch.health.servers["memory"].status is ServerStatus.ERROR
    finally:
        with contextlib.suppress(ProcessLookupError):  # the supervisor may have killed it
            os.kill(pid, signal.SIGCONT)

    began = time.monotonic()
    clock.now += 31  # the cooldown has passed
    await orch.check_health()  # the half-open probe closes the breaker, which starts a drain
    await drain(orch)
    recovered_in = time.monotonic() - began
    assert orch.breakers["memory"].state is BreakerState.CLOSED
    names = await _graph_names(memory)
    assert all(names.count(task_entity(u)) == 1 for u in uids)
    print(f"\nhang: breaker opened; after recovery {len(uids)} rows drained in {recovered_in:.2f}s")


async def test_a_server_that_answers_with_errors_is_counted_not_retried_and_never_crashes(
    orchestrator: OrchFactory,
) -> None:
    liar = {"command": sys.executable, "args": [str(FIXTURE_SERVER)], "retry_attempts": 3}
    orch = await orchestrator(
        fault_config(("deltatask", "memory"), overrides={"memory": liar}), sleep=no_sleep
    )
    task = await orch.create_task("told to a liar")
    states = await orch.wait_synced(task.uid, within=10)
    assert states == {"deltatask": OutboxState.DONE, "memory": OutboxState.DEAD}
    stats = orch.get_statistics()["servers"]["memory"]  # type: ignore[index]
    assert stats["errors_by_kind"] == {"tool_failed": 1}  # one call, no retries
    assert orch.breakers["memory"].state is BreakerState.CLOSED
    assert (await orch.get_task(task.id)).status is TaskStatus.OPEN  # memory is optional
    assert orch.health.servers["deltatask"].status is ServerStatus.ONLINE


async def test_a_required_server_refusing_a_task_rolls_it_back_everywhere(
    orchestrator: OrchFactory,
) -> None:
    liar = {"command": sys.executable, "args": [str(FIXTURE_SERVER)]}
    config = fault_config(
        ("deltatask", "memory"),
        overrides={"deltatask": liar, "memory": {"priority": 1}},  # same tier: both get it
    )
    orch = await orchestrator(config, sleep=no_sleep)
    told: list[tuple[int, str]] = []

    async def tell(task: Any, reason: str) -> None:
        told.append((task.id, reason))

    orch.task_failed_listeners.append(tell)
    task = await orch.create_task("refused by the required server")
    await orch.wait_synced(task.uid, within=15)
    await drain(orch)

    assert (await orch.store.get_by_uid(task.uid)).status is TaskStatus.FAILED
    memory = orch.integrations["memory"]
    assert isinstance(memory, MemoryIntegration)
    assert task_entity(task.uid) not in await _graph_names(memory)
    assert told == [(task.id, "deltatask refused the task")]
    assert await orch.list_tasks(0) == []
