"""Time spent on tasks, through our time-tracker server: one running timer per Telegram user.

The tracker knows a task by its uid and a person as `tg:<user id>`; entries carry the task's
tags as they were when the timer started, so `/report #tag` sums what was tagged then. In the
fan-out a task's own changes need nothing from the tracker, except that finishing or
deleting a task stops any timer still running on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from core.errors import ToolFailed
from core.models import Change, Operation, Task
from integrations.mcp.integration import McpIntegration
from integrations.mcp.launch import Launch, python_module

GroupBy = Literal["task", "day", "tag"]
#: Entries `/report #tag` reads to split a tag's time by task.
TAG_SCAN = 1000
_ALREADY = "already has a running timer"
_NONE_RUNNING = "has no running timer"


def tracker_user(user_id: int) -> str:
    """The tracker's name for a Telegram user."""
    return f"tg:{user_id}"


def _instant(value: object) -> datetime | None:
    if value is None:
        return None
    moment = datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class TimeEntry:
    """One stretch of work on a task, running or finished."""

    entry_id: str
    task_uid: str
    started: datetime
    stopped: datetime | None
    minutes: float
    tags: tuple[str, ...]

    @property
    def running(self) -> bool:
        return self.stopped is None

    @classmethod
    def from_tool(cls, raw: dict[str, Any], *, now: datetime | None = None) -> TimeEntry:
        started = _instant(raw["started"])
        assert started is not None
        stopped = _instant(raw.get("stopped"))
        minutes = raw.get("minutes")
        if minutes is None:  # running: what it would be if stopped now
            minutes = ((now or datetime.now(UTC)) - started).total_seconds() / 60
        return cls(
            entry_id=str(raw["id"]),
            task_uid=str(raw["task_id"]),
            started=started,
            stopped=stopped,
            minutes=float(minutes),
            tags=tuple(str(t) for t in raw.get("tags") or ()),
        )


@dataclass(frozen=True, slots=True)
class TimerStart:
    """What a start asked for produced: a new timer, or the one already running."""

    started: bool
    entry: TimeEntry


@dataclass(frozen=True, slots=True)
class ReportLine:
    key: str  # task uid, UTC day or tag, after `group_by`
    minutes: float
    entries: int


@dataclass(frozen=True, slots=True)
class TimeReport:
    total_minutes: float
    lines: tuple[ReportLine, ...]


class TimeTrackerIntegration(McpIntegration):
    """Timers, manual time and reports; stops a task's running timers when it ends."""

    name = "time-tracker"

    def _launch(self) -> Launch:
        env = {"TIME_TRACKER_HOME": str(self.state_dir)}
        return python_module("integrations.servers.time_tracker", env=env)

    async def _apply(self, change: Change) -> str | None:
        if change.op in (Operation.COMPLETE, Operation.DELETE):
            await self._stop_timers_on(change.task.uid)
        return None

    async def _erase(self, change: Change, external_id: str | None) -> None:
        await self._stop_timers_on(change.task.uid)

    async def _stop_timers_on(self, task_uid: str) -> None:
        """Stop every timer running on the task (one per user at most); a replay finds none."""
        raw = await self._call_list("list_entries", {"task_id": task_uid, "limit": 1000})
        for user in sorted({str(e["user"]) for e in raw if e.get("running")}):
            try:
                await self._call("stop_timer", {"user": user})
            except ToolFailed as exc:
                if _NONE_RUNNING not in str(exc):
                    raise

    # -- what /track, /stop and /report use -------------------------------------------------

    async def start_timer(self, task: Task, user_id: int | None = None) -> TimerStart:
        """Start the user's timer on the task (its author's by default), or say which runs."""
        who = user_id if user_id is not None else task.author_id or 0
        running = await self.active(who)
        if running is not None:
            return TimerStart(started=False, entry=running)
        arguments = {"task_id": task.uid, "user": tracker_user(who), "tags": list(task.tags)}
        try:
            raw = await self._call_dict("start_timer", arguments)
        except ToolFailed as exc:
            # Started a moment ago by a second press or from another chat: report that one.
            running = await self.active(who) if _ALREADY in str(exc) else None
            if running is None:
                raise
            return TimerStart(started=False, entry=running)
        return TimerStart(started=True, entry=TimeEntry.from_tool(raw))

    async def stop_timer(self, user_id: int) -> TimeEntry | None:
        """Stop the user's running timer; None when nothing was running."""
        try:
            raw = await self._call_dict("stop_timer", {"user": tracker_user(user_id)})
        except ToolFailed as exc:
            if _NONE_RUNNING in str(exc):
                return None
            raise
        return TimeEntry.from_tool(raw)

    async def active(self, user_id: int) -> TimeEntry | None:
        """The user's running timer, with the minutes it has run so far."""
        raw = await self._call_dict("get_active_timer", {"user": tracker_user(user_id)})
        if not raw.get("active") or not isinstance(raw.get("entry"), dict):
            return None
        return TimeEntry.from_tool(raw["entry"])

    async def report(
        self,
        user_id: int,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        group_by: GroupBy = "task",
    ) -> TimeReport:
        """Finished time of one user, summed per task, UTC day or tag."""
        arguments: dict[str, Any] = {"user": tracker_user(user_id), "group_by": group_by}
        if since is not None:
            arguments["since"] = since.astimezone(UTC).isoformat()
        if until is not None:
            arguments["until"] = until.astimezone(UTC).isoformat()
        raw = await self._call_dict("get_report", arguments)
        lines = tuple(
            ReportLine(str(g["key"]), float(g["minutes"]), int(g["entries"]))
            for g in raw.get("groups", [])
        )
        return TimeReport(float(raw.get("total_minutes") or 0.0), lines)

    async def entries(
        self,
        user_id: int,
        *,
        since: datetime | None = None,
        limit: int = TAG_SCAN,
    ) -> list[TimeEntry]:
        """The user's entries, newest first, running ones included."""
        # LIMIT: /report #tag reads at most TAG_SCAN entries to split a tag by task; older
        # time is missing from the split (not from the total). A tag filter in the server's
        # get_report would make it exact.
        arguments: dict[str, Any] = {"user": tracker_user(user_id), "limit": limit}
        if since is not None:
            arguments["since"] = since.astimezone(UTC).isoformat()
        now = datetime.now(UTC)
        raw = await self._call_list("list_entries", arguments)
        return [TimeEntry.from_tool(item, now=now) for item in raw if isinstance(item, dict)]
