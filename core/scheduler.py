"""APScheduler owns the clock: sync every `sync_interval`, health every `health_check_interval`.

Both jobs are idempotent, so a late or doubled run costs time, not correctness. Missed
runs after downtime are coalesced into one run, accepted up to `MISFIRE_GRACE_S` late;
`max_instances=1` means a slow run is never overlapped by the next tick (APScheduler
skips that tick and logs it, which we surface as `scheduler.job.missed`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobEvent
from apscheduler.schedulers.asyncio import AsyncIOScheduler

log = logging.getLogger("taskbot.scheduler")

MISFIRE_GRACE_S = 120  # a run this late still happens; later ones are dropped as missed


class TaskbotScheduler:
    """Thin owner of one AsyncIOScheduler with taskbot's periodic jobs."""

    def __init__(self) -> None:
        self._scheduler = AsyncIOScheduler(
            job_defaults={
                "coalesce": True,
                "max_instances": 1,
                "misfire_grace_time": MISFIRE_GRACE_S,
            }
        )
        self._scheduler.add_listener(self._on_event, EVENT_JOB_MISSED | EVENT_JOB_ERROR)

    def every(
        self,
        seconds: float,
        job: Callable[[], Awaitable[object]],
        *,
        name: str,
        run_now: bool = False,
    ) -> None:
        """Run `job` every `seconds`; `run_now` also runs it at start."""
        extra = {"next_run_time": datetime.now(UTC)} if run_now else {}

        async def run() -> None:
            try:
                await job()
            except asyncio.CancelledError:
                # shutdown() cancels a run in progress; that is the stop, not a failure
                # APScheduler would log with a traceback. The task ends here either way.
                log.info("scheduler.job.cancelled", extra={"job": name})

        self._scheduler.add_job(
            run,
            "interval",
            seconds=seconds,
            id=name,
            name=name,
            replace_existing=True,
            **extra,
        )

    def start(self) -> None:
        self._scheduler.start()

    def shutdown(self) -> None:
        """Stop ticking; running jobs are not awaited here (their owners close them)."""
        if self._scheduler.running:
            self._scheduler.shutdown(wait=False)

    def job_names(self) -> list[str]:
        return [job.id for job in self._scheduler.get_jobs()]

    @staticmethod
    def _on_event(event: JobEvent) -> None:
        if event.code == EVENT_JOB_MISSED:
            log.warning("scheduler.job.missed", extra={"job": event.job_id})
        else:
            log.error("scheduler.job.failed", extra={"job": event.job_id})
