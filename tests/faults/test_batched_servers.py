"""Servers fed in groups (hpkv-memory, shrimp) die or hang mid-group: nothing lost or doubled."""

from __future__ import annotations

import asyncio
import os
import signal
from collections import Counter
from pathlib import Path

import pytest

from core.models import Change, Operation
from core.orchestrator import EnterpriseTaskOrchestrator
from integrations.mcp import McpIntegration
from integrations.semantic import PROJECT, SemanticMemoryIntegration
from integrations.shrimp import ShrimpIntegration
from tests.faults.conftest import OrchFactory, drain, fault_config, no_sleep
from tests.integration.conftest import make_task

BURST = 80


async def _copies(orch: EnterpriseTaskOrchestrator, server: str) -> Counter[str]:
    """How many copies of each task uid the server holds, read through its own tools."""
    integration = orch.integrations[server]
    assert isinstance(integration, McpIntegration)
    if isinstance(integration, ShrimpIntegration):
        return Counter(item.uid for item in await integration.plan() if item.uid)
    assert isinstance(integration, SemanticMemoryIntegration)
    arguments = {"query": "task", "topK": 10 * BURST, "minScore": 0, "project_name": PROJECT}
    found = await integration.handle.call("search_memory", arguments, timeout=60)
    assert isinstance(found, list)
    return Counter(str(item["metadata"]["task_uid"]) for item in found)


@pytest.mark.parametrize("server", ["hpkv-memory", "shrimp-task-manager"])
async def test_kill_9_during_a_burst_of_grouped_changes_loses_and_duplicates_nothing(
    orchestrator: OrchFactory, server: str
) -> None:
    orch = await orchestrator(fault_config(("deltatask", server)), sleep=no_sleep)
    integration = orch.integrations[server]
    assert isinstance(integration, McpIntegration)
    first_pid = integration.handle.pid
    assert first_pid is not None

    uids = []
    for i in range(BURST):
        task = await orch.create_task(f"grouped task {i}", tags=["burst"])
        uids.append(task.uid)
        if i == BURST // 4:
            os.kill(first_pid, signal.SIGKILL)
        await asyncio.sleep(0)  # fan-outs interleave with the burst and group up
    await drain(orch, within=120)

    copies = await _copies(orch, server)
    assert {uid: copies[uid] for uid in uids} == dict.fromkeys(uids, 1)
    assert integration.handle.restarts >= 1


async def _until_stored(memory: SemanticMemoryIntegration, count: int) -> None:
    for _ in range(200):
        stats = await memory.handle.call("get_stats", {}, timeout=10)
        if isinstance(stats, dict) and stats["memories"] == count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the server never stored the abandoned group of {count}")


async def test_a_group_the_server_stores_after_its_callers_gave_up_replays_as_the_same_memories(
    tmp_path: Path,
) -> None:
    tasks = [make_task(id=n, title=f"stalled errand {n}") for n in range(10)]
    async with SemanticMemoryIntegration(data_dir=tmp_path / "data") as memory:
        pid = memory.handle.pid
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # the group is sent; the server reads it once resumed
        try:
            # As the orchestrator's attempt timeout does: every caller gives up.
            outcomes = await asyncio.gather(
                *(asyncio.wait_for(memory.apply(Change(Operation.CREATE, t)), 0.5) for t in tasks),
                return_exceptions=True,
            )
        finally:
            os.kill(pid, signal.SIGCONT)
        assert all(isinstance(outcome, TimeoutError) for outcome in outcomes)
        await _until_stored(memory, len(tasks))  # the group went through, its reply was lost

        keys = await asyncio.gather(*(memory.apply(Change(Operation.CREATE, t)) for t in tasks))
        replayed = await asyncio.gather(*(memory.apply(Change(Operation.CREATE, t)) for t in tasks))
        arguments = {"query": "errand", "topK": 100, "minScore": 0, "project_name": PROJECT}
        found = await memory.handle.call("search_memory", arguments, timeout=60)

    assert replayed == keys
    assert len(set(keys)) == len(tasks)
    assert isinstance(found, list)
    held = Counter(str(item["metadata"]["task_uid"]) for item in found)
    assert held == Counter(t.uid for t in tasks)
