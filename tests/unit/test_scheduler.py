"""The periodic jobs: they run, a failing run is reported, a stop mid-run is not a failure."""

from __future__ import annotations

import asyncio
import logging

import pytest

from core.scheduler import TaskbotScheduler

pytestmark = pytest.mark.timeout(30)


async def test_a_job_runs_at_start_and_again_each_interval() -> None:
    runs: list[float] = []
    third = asyncio.Event()
    scheduler = TaskbotScheduler()

    async def job() -> None:
        runs.append(asyncio.get_running_loop().time())
        if len(runs) == 3:
            third.set()

    scheduler.every(0.1, job, name="sync", run_now=True)
    scheduler.start()
    try:
        await asyncio.wait_for(third.wait(), 5)
    finally:
        scheduler.shutdown()
    assert scheduler.job_names() == ["sync"]
    assert runs[2] - runs[0] >= 0.15  # the second and third came on the interval


async def test_a_failing_run_is_reported_by_name(caplog: pytest.LogCaptureFixture) -> None:
    scheduler = TaskbotScheduler()
    failed = asyncio.Event()

    async def job() -> None:
        failed.set()
        raise RuntimeError("server gone")

    scheduler.every(60, job, name="health", run_now=True)
    with caplog.at_level(logging.INFO, logger="taskbot.scheduler"):
        scheduler.start()
        await asyncio.wait_for(failed.wait(), 5)
        await asyncio.sleep(0.05)
        scheduler.shutdown()
    (record,) = [r for r in caplog.records if r.name == "taskbot.scheduler"]
    assert (record.getMessage(), record.levelname) == ("scheduler.job.failed", "ERROR")
    assert record.job == "health"  # type: ignore[attr-defined]


async def test_a_run_in_progress_at_shutdown_is_cancelled_quietly(
    caplog: pytest.LogCaptureFixture,
) -> None:
    scheduler = TaskbotScheduler()
    started = asyncio.Event()

    async def job() -> None:
        started.set()
        await asyncio.sleep(30)

    scheduler.every(60, job, name="sync", run_now=True)
    with caplog.at_level(logging.INFO):
        scheduler.start()
        await asyncio.wait_for(started.wait(), 5)
        scheduler.shutdown()
        await asyncio.sleep(0.1)
    events = [(r.getMessage(), r.levelname) for r in caplog.records]
    assert ("scheduler.job.cancelled", "INFO") in events
    assert not [e for e in events if e[1] == "ERROR"]
