"""Time tracking: `/track <id>`, `/stop`, `/report [week|#tag]` and the card's timer button.

A user has one running timer wherever they are; a second start names the one that runs.
Reports are per user. In a group, only this chat's tasks are named: time on tasks of other
chats is one "in other chats" line, so a report never shows another chat's titles.
The timer button of a task card is answered here while the "time-tracker" integration is
live (this router sits before the tasks router); otherwise the tasks router answers that
tracking is off.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bot.keyboards import TaskAction, Verb
from bot.permissions import find_task
from bot.rendering import esc, plain, when
from bot.replies import answer_long
from bot.texts import text
from core.errors import IntegrationError, TaskNotFound
from core.models import Task, TaskStatus
from core.orchestrator import EnterpriseTaskOrchestrator
from integrations.time_tracker import TimeEntry, TimerStart, TimeTrackerIntegration

TRACKER = "time-tracker"
WEEK_DAYS = 7  # `/report week`: today and the six days before it
Clock = Callable[[], datetime]
_TODAY = ("", "today", "сегодня")
_WEEK = ("week", "неделя", "неделю", "7d")


def _tracker(orch: EnterpriseTaskOrchestrator) -> TimeTrackerIntegration | None:
    tracker = orch.integration(TRACKER)
    return tracker if isinstance(tracker, TimeTrackerIntegration) else None


def tracking_live(query: CallbackQuery, orch: EnterpriseTaskOrchestrator) -> bool:
    """Filter: the timer button is ours only while the tracker is live."""
    return _tracker(orch) is not None


def spent(minutes: float, lang: str) -> str:
    """`1 h 5 min`, `40 min`, `0 min`, with the reminder texts' units."""
    hours, rest = divmod(round(minutes), 60)
    parts = [text(lang, "span_h", n=hours)] if hours else []
    if rest or not hours:
        parts.append(text(lang, "span_m", n=rest))
    return " ".join(parts)


async def _chat_task(orch: EnterpriseTaskOrchestrator, uid: str, chat_id: int) -> Task | None:
    try:
        task = await orch.store.get_by_uid(uid)
    except TaskNotFound:
        return None
    return task if task.chat_id == chat_id else None


async def _named(orch: EnterpriseTaskOrchestrator, uid: str, chat_id: int, lang: str) -> str:
    """`<b>#12</b> Title` for a task of this chat, a neutral phrase for any other."""
    task = await _chat_task(orch, uid, chat_id)
    if task is None or task.status is TaskStatus.DELETED:
        return text(lang, "track_other_task")
    return f"<b>#{task.id}</b> {esc(task.title)}"


async def _start_reply(
    orch: EnterpriseTaskOrchestrator,
    outcome: TimerStart,
    chat_id: int,
    lang: str,
) -> str:
    task = await _named(orch, outcome.entry.task_uid, chat_id, lang)
    if outcome.started:
        return text(lang, "track_started", task=task)
    return text(lang, "track_running", task=task, spent=spent(outcome.entry.minutes, lang))


async def track(
    message: Message,
    command: CommandObject,
    orch: EnterpriseTaskOrchestrator,
    lang: str,
) -> None:
    tracker = _tracker(orch)
    if tracker is None:
        await message.answer(text(lang, "timer_off"))
        return
    raw = (command.args or "").strip().lstrip("#")
    if not raw.isdigit() or len(raw) > 11 or message.from_user is None:
        await message.answer(text(lang, "track_usage"))
        return
    task = await find_task(orch, message.chat.id, int(raw))
    if task is None:
        await message.answer(text(lang, "not_found", id=raw))
        return
    if task.status is not TaskStatus.OPEN:
        await message.answer(text(lang, "track_closed", id=task.id))
        return
    try:
        outcome = await tracker.start_timer(task, message.from_user.id)
    except IntegrationError:
        await message.answer(text(lang, "server_down", server=TRACKER))
        return
    await message.answer(await _start_reply(orch, outcome, message.chat.id, lang))


async def stop(message: Message, orch: EnterpriseTaskOrchestrator, lang: str) -> None:
    tracker = _tracker(orch)
    if tracker is None or message.from_user is None:
        await message.answer(text(lang, "timer_off"))
        return
    try:
        entry = await tracker.stop_timer(message.from_user.id)
    except IntegrationError:
        await message.answer(text(lang, "server_down", server=TRACKER))
        return
    if entry is None:
        await message.answer(text(lang, "track_none"))
        return
    task = await _named(orch, entry.task_uid, message.chat.id, lang)
    await message.answer(text(lang, "track_stopped", task=task, spent=spent(entry.minutes, lang)))


async def timer_button(
    query: CallbackQuery,
    callback_data: TaskAction,
    orch: EnterpriseTaskOrchestrator,
    lang: str,
) -> None:
    """The card's timer button: start, or say which timer already runs."""
    tracker = _tracker(orch)
    message = query.message
    if tracker is None or not isinstance(message, Message):
        await query.answer(text(lang, "stale_button"))
        return
    task = await find_task(orch, message.chat.id, callback_data.task_id)
    if task is None:
        await query.answer(plain(text(lang, "not_found", id=callback_data.task_id)))
        return
    if task.status is not TaskStatus.OPEN:
        await query.answer(plain(text(lang, "track_closed", id=task.id)))
        return
    try:
        outcome = await tracker.start_timer(task, query.from_user.id)
    except IntegrationError:
        await query.answer(plain(text(lang, "server_down", server=TRACKER)), show_alert=True)
        return
    reply = plain(await _start_reply(orch, outcome, message.chat.id, lang))
    await query.answer(reply[:200], show_alert=not outcome.started)


# -- reports ---------------------------------------------------------------------------------


async def _task_lines(
    orch: EnterpriseTaskOrchestrator,
    minutes_by_uid: dict[str, float],
    chat_id: int,
    lang: str,
) -> list[str]:
    """One line per task of this chat, most time first; other chats' time summed in one."""
    lines: list[tuple[float, str]] = []
    elsewhere = 0.0
    for uid, minutes in minutes_by_uid.items():
        task = await _chat_task(orch, uid, chat_id)
        if task is None:
            elsewhere += minutes
            continue
        lines.append((minutes, f"▫️ <b>#{task.id}</b> {esc(task.title)} — {spent(minutes, lang)}"))
    ordered = [line for _, line in sorted(lines, key=lambda pair: -pair[0])]
    if elsewhere:
        ordered.append(text(lang, "report_elsewhere", spent=spent(elsewhere, lang)))
    return ordered


async def _running_line(
    orch: EnterpriseTaskOrchestrator,
    tracker: TimeTrackerIntegration,
    user_id: int,
    chat_id: int,
    lang: str,
) -> list[str]:
    entry = await tracker.active(user_id)
    if entry is None:
        return []
    task = await _named(orch, entry.task_uid, chat_id, lang)
    return ["", text(lang, "report_running", task=task, spent=spent(entry.minutes, lang))]


async def report(
    message: Message,
    command: CommandObject,
    orch: EnterpriseTaskOrchestrator,
    lang: str,
    tz: ZoneInfo,
    clock: Clock,
) -> None:
    """Today (default), the last seven days by day and task, or all time on one #tag."""
    tracker = _tracker(orch)
    if tracker is None or message.from_user is None:
        await message.answer(text(lang, "timer_off"))
        return
    user, chat = message.from_user.id, message.chat.id
    arg = (command.args or "").strip().lower()
    now = clock()
    today = datetime.combine(now.astimezone(tz).date(), time(), tzinfo=tz)
    if not (arg in _TODAY or arg in _WEEK or (arg.startswith("#") and len(arg) > 1)):
        await message.answer(text(lang, "report_usage"))
        return
    try:
        if arg in _TODAY:
            body = await _report_since(orch, tracker, user, chat, today, "report_today", lang)
        elif arg in _WEEK:
            since = today - timedelta(days=WEEK_DAYS - 1)
            body = await _report_week(orch, tracker, user, chat, since, lang, tz, now)
        else:
            body = await _report_tag(orch, tracker, user, chat, arg[1:], lang)
        body += await _running_line(orch, tracker, user, chat, lang)
    except IntegrationError:
        await message.answer(text(lang, "server_down", server=TRACKER))
        return
    await answer_long(message, "\n".join(body))


async def _report_since(
    orch: EnterpriseTaskOrchestrator,
    tracker: TimeTrackerIntegration,
    user: int,
    chat: int,
    since: datetime,
    header: str,
    lang: str,
) -> list[str]:
    found = await tracker.report(user, since=since, group_by="task")
    if not found.lines:
        return [text(lang, header, total=spent(0, lang)), text(lang, "report_nothing")]
    by_task = {line.key: line.minutes for line in found.lines}
    lines = await _task_lines(orch, by_task, chat, lang)
    return [text(lang, header, total=spent(found.total_minutes, lang)), *lines]


async def _report_week(
    orch: EnterpriseTaskOrchestrator,
    tracker: TimeTrackerIntegration,
    user: int,
    chat: int,
    since: datetime,
    lang: str,
    tz: ZoneInfo,
    now: datetime,
) -> list[str]:
    body = await _report_since(orch, tracker, user, chat, since, "report_week", lang)
    entries = [e for e in await tracker.entries(user, since=since) if not e.running]
    if not entries:
        return body
    per_day: dict[str, float] = defaultdict(float)
    for entry in entries:  # days in the reader's zone, not the server's UTC days
        per_day[entry.started.astimezone(tz).strftime("%Y-%m-%d")] += entry.minutes
    days = []
    for day in sorted(per_day):
        label = when(datetime.fromisoformat(day).replace(tzinfo=tz), tz, lang, now)
        days.append(f"{label.rsplit(' ', 1)[0]} — {spent(per_day[day], lang)}")
    return [*body, "", *days]


async def _report_tag(
    orch: EnterpriseTaskOrchestrator,
    tracker: TimeTrackerIntegration,
    user: int,
    chat: int,
    tag: str,
    lang: str,
) -> list[str]:
    entries: list[TimeEntry] = await tracker.entries(user)
    by_task: dict[str, float] = defaultdict(float)
    for entry in entries:
        if not entry.running and tag in entry.tags:
            by_task[entry.task_uid] += entry.minutes
    total = sum(by_task.values())
    header = text(lang, "report_tag", tag=esc(tag), total=spent(total, lang))
    if not by_task:
        return [header, text(lang, "report_nothing")]
    return [header, *await _task_lines(orch, dict(by_task), chat, lang)]


def build_router() -> Router:
    """A fresh router per dispatcher: an aiogram router belongs to one parent only."""
    router = Router(name="tracking")
    router.message.register(track, Command("track"))
    router.message.register(stop, Command("stop"))
    router.message.register(report, Command("report"))
    router.callback_query.register(
        timer_button, TaskAction.filter(F.action == Verb.TIMER), tracking_live
    )
    return router
