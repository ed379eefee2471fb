"""`/calendar`: the week's deadline events as the calendar server holds them; `/export ics`.

`/calendar` reads the events back from the CalDAV server (not from the local store), so
what it shows is what a calendar app subscribed to that server shows; each event is mapped
to its task by the uid marker, and only this chat's tasks are listed. `/export ics` builds
the file locally from the chat's tasks, so it works with the calendar server down or off.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.filters import Command
from aiogram.types import BufferedInputFile, Message

from bot.rendering import esc, when
from bot.replies import answer_long
from bot.texts import text
from core.errors import IntegrationError, TaskNotFound
from core.models import Task, TaskStatus
from core.orchestrator import EnterpriseTaskOrchestrator
from core.queries import TaskQueries
from integrations.calendar import CalendarEvent, CalendarIntegration
from integrations.ics import tasks_to_ics

log = logging.getLogger("taskbot.bot")

CALENDAR = "calendar"
WEEK = timedelta(days=7)
Clock = Callable[[], datetime]


async def _task_of(
    orch: EnterpriseTaskOrchestrator, event: CalendarEvent, chat_id: int
) -> Task | None:
    """The live task of this chat the event was made for, else None (others stay private)."""
    if event.task_uid is None:
        return None
    try:
        task = await orch.store.get_by_uid(event.task_uid)
    except TaskNotFound:
        return None
    if task.chat_id != chat_id or task.status not in (TaskStatus.OPEN, TaskStatus.DONE):
        return None
    return task


async def show_calendar(
    message: Message,
    orch: EnterpriseTaskOrchestrator,
    lang: str,
    tz: ZoneInfo,
    clock: Clock,
) -> None:
    """The next seven days from the start of today, in the reader's zone."""
    calendar = orch.integration(CALENDAR)
    if not isinstance(calendar, CalendarIntegration):
        await message.answer(text(lang, "calendar_off"))
        return
    now = clock()
    start = datetime.combine(now.astimezone(tz).date(), time(), tzinfo=tz)
    try:
        events = await calendar.events(start, start + WEEK)
    except IntegrationError as exc:
        log.warning("calendar.read_failed", extra={"error": str(exc)})
        await message.answer(text(lang, "server_down", server=CALENDAR))
        return
    lines = []
    for event in events:
        task = await _task_of(orch, event, message.chat.id)
        if task is None:
            continue
        mark = "✔️" if task.status is TaskStatus.DONE else "📌"
        at = when(event.start, tz, lang, now)
        lines.append(f"{mark} {at} — <b>#{task.id}</b> {esc(task.title)}")
    if not lines:
        await message.answer(text(lang, "calendar_empty"))
        return
    await answer_long(message, "\n".join([text(lang, "calendar_header", count=len(lines)), *lines]))


async def export_ics(
    message: Message,
    queries: TaskQueries,
    lang: str,
    tz: ZoneInfo,
    clock: Clock,
) -> None:
    """`/export ics`: the chat's tasks with deadlines as a calendar file."""
    tasks = [t for t in await queries.everything(message.chat.id) if t.deadline is not None]
    if not tasks:
        await message.answer(text(lang, "export_ics_empty"))
        return
    now = clock()
    data = tasks_to_ics(tasks, now=now)
    name = f"tasks-{now.astimezone(tz):%Y-%m-%d}.ics"
    caption = text(lang, "export_ics_caption", count=len(tasks))
    await message.answer_document(BufferedInputFile(data, filename=name), caption=caption)


def build_router() -> Router:
    """A fresh router per dispatcher: an aiogram router belongs to one parent only."""
    router = Router(name="calendar")
    router.message.register(show_calendar, Command("calendar"))
    # Only `/export ics` is ours; a bare /export still reaches the JSON and CSV export.
    ics_only = F.args.func(lambda args: (args or "").strip().lower() == "ics")
    router.message.register(export_ics, Command("export", magic=ics_only))
    return router
