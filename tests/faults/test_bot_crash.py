"""kill -9 of the bot itself in the middle of a burst: the next start sends what was owed."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path
from typing import Any

import psutil

from integrations.deltatask import DeltaTaskIntegration
from integrations.memory import MemoryIntegration, task_entity
from tests.faults.conftest import OrchFactory, drain, fault_config

ROOT = Path(__file__).resolve().parents[2]
BURST = 300
KILL_AFTER = 120


async def _acks_then_kill(data_dir: Path) -> list[str]:
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).with_name("burst_child.py")),
        str(data_dir),
        str(BURST),
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    assert child.stdout is not None
    acked: list[str] = []
    servers: list[psutil.Process] = []
    async with asyncio.timeout(120):
        while len(acked) < KILL_AFTER:
            line = (await child.stdout.readline()).decode()
            assert line, "the child died before the kill"
            if line.startswith("READY"):
                servers = psutil.Process(child.pid).children(recursive=True)
            elif line.startswith("ACK "):
                acked.append(line.split()[1])
        os.kill(child.pid, signal.SIGKILL)
        await child.wait()
    # Its MCP servers notice the closed pipe and exit; reap any straggler we started.
    _gone, alive = psutil.wait_procs(servers, timeout=10)
    for proc in alive:
        proc.kill()
    return acked


async def test_kill_9_of_the_bot_mid_burst_loses_no_acknowledged_task_and_duplicates_none(
    orchestrator: OrchFactory, tmp_path: Path
) -> None:
    acked = await _acks_then_kill(tmp_path / "data")
    orch = await orchestrator(fault_config(("deltatask", "memory")))
    drained_in = await drain(orch)

    stored = {t.uid for t in await orch.list_tasks(0, limit=BURST)}
    assert set(acked) <= stored, "an acknowledged task vanished from the store"
    deltatask = orch.integrations["deltatask"]
    memory = orch.integrations["memory"]
    assert isinstance(deltatask, DeltaTaskIntegration)
    assert isinstance(memory, MemoryIntegration)
    refs = [r.get("external_ref") for r in await deltatask.list_tasks(include_completed=True)]
    graph: dict[str, Any] = await memory.handle.call("read_graph", {}, timeout=30)  # type: ignore[assignment]
    names = [e["name"] for e in graph["entities"]]
    for uid in stored:
        assert refs.count(uid) == 1, f"{uid} on deltatask {refs.count(uid)}x"
        assert names.count(task_entity(uid)) == 1, (
            f"{uid} on memory {names.count(task_entity(uid))}x"
        )
    assert len(refs) == len(stored)
    print(
        f"\nbot kill -9: {len(acked)} acknowledged, {len(stored)} stored, 0 lost, "
        f"0 duplicated; restart drained the outbox in {drained_in:.2f}s"
    )
