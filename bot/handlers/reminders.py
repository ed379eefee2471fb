"""The chat side of reminders: the cards the loop sends, their buttons, and /remind."""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import timedelta

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bot.delivery import DeliveryQueue
from bot.handlers.lookup import button_message
from bot.keyboards import RemindAction, reminder_keyboard
from bot.rendering import esc, split_message, task_line, when
from bot.texts import text
from core.errors import TaskNotFound
from core.models import TaskStatus
from core.orchestrator import EnterpriseTaskOrchestrator
from core.reminders import (
    DIGEST_MAX_TASKS,
    DeliveryOutcome,
    Notice,
    Offset,
    ReminderKind,
    ReminderService,
    parse_offsets,
)


class ReminderCards:
    """The `NoticeSender` the reminder loop talks to: renders a notice, queues it for delivery."""

    def __init__(self, delivery: DeliveryQueue, *, default_lang: str = "en") -> None:
        self.delivery = delivery
        self.default_lang = default_lang

    async def send_notice(self, notice: Notice) -> DeliveryOutcome:
        lang = notice.settings.lang or self.default_lang
        if notice.kind is ReminderKind.DIGEST:
            body = render_digest(notice, lang)
            return await self.delivery.send(notice.chat_id, split_message(body)[0])
        assert notice.task is not None
        markup = reminder_keyboard(notice.task, lang)
        return await self.delivery.send(
            notice.chat_id, render_card(notice, lang), reply_markup=markup
        )


def span(delta: timedelta, lang: str) -> str:
    """'1 d 2 h', '45 min': the largest two units, rounded up to the minute ('in 0 min' is
    no help when 40 s are left)."""
    minutes = max(math.ceil(delta.total_seconds() / 60), 0)
    days, rest = divmod(minutes, 1440)
    hours, mins = divmod(rest, 60)
    parts = [(days, "span_d"), (hours, "span_h"), (mins, "span_m")]
    shown = [text(lang, key, n=n) for n, key in parts if n][:2]
    return " ".join(shown) or text(lang, "span_m", n=0)


def render_card(notice: Notice, lang: str) -> str:
    """One task's reminder: due now, due in some time, or overdue."""
    task = notice.task
    assert task is not None
    values = {
        "late": text(lang, "reminder_late") if notice.late else "",
        "id": task.id,
        "title": esc(task.title),
    }
    tz = notice.settings.tz
    if task.deadline is None:
        return text(lang, "reminder_plain", **values)
    if notice.fire_at < task.deadline:
        left = span(task.deadline - notice.fire_at, lang)
        return text(lang, "reminder_soon", when=when(task.deadline, tz, lang), left=left, **values)
    if notice.fire_at == task.deadline:
        return text(lang, "reminder_due", **values)
    return text(lang, "reminder_overdue", when=when(task.deadline, tz, lang), **values)


def render_digest(notice: Notice, lang: str) -> str:
    """The morning list of overdue tasks; past `DIGEST_MAX_TASKS` it points to /list."""
    late = text(lang, "reminder_late") if notice.late else ""
    shown = notice.overdue[:DIGEST_MAX_TASKS]
    more = len(notice.overdue) > len(shown)
    count = f"{len(shown)}+" if more else str(len(shown))
    lines = [text(lang, "digest_header", late=late, count=count)]
    lines += [task_line(t, notice.settings.tz, lang) for t in shown]
    if more:
        lines.append(text(lang, "digest_more"))
    return "\n".join(lines)


def describe_offsets(offsets: Sequence[Offset], lang: str) -> str:
    if not offsets:
        return text(lang, "remind_at_deadline")
    spans = ", ".join(span(o.span, lang) for o in offsets)
    return text(lang, "remind_before", spans=spans)


async def remind(
    message: Message, command: CommandObject, reminders: ReminderService, lang: str
) -> None:
    """`/remind` shows the user's reminder times; `/remind 1d 1h 15m` (or `off`) sets them."""
    user_id = message.from_user.id if message.from_user else message.chat.id
    if not (command.args or "").strip():
        settings = await reminders.settings_for(user_id)
        shown = describe_offsets(settings.offsets, lang)
        await message.answer(text(lang, "remind_current", offsets=shown))
        return
    offsets = parse_offsets(command.args or "")
    await reminders.set_offsets(user_id, offsets, chat_id=message.chat.id)
    await message.answer(text(lang, "remind_saved", offsets=describe_offsets(offsets, lang)))


async def reminder_button(
    query: CallbackQuery,
    callback_data: RemindAction,
    orch: EnterpriseTaskOrchestrator,
    reminders: ReminderService,
    lang: str,
) -> None:
    """Done closes the task (its reminders go with it); a snooze reminds again later."""
    message = await button_message(query, lang)
    if message is None:
        return
    try:
        task = await orch.get_task(callback_data.task_id, chat_id=message.chat.id)
    except TaskNotFound:
        await query.answer(text(lang, "not_found", id=callback_data.task_id), show_alert=True)
        return
    if callback_data.action == "done":
        if task.status is TaskStatus.OPEN:
            task = await orch.complete_task(task.id, chat_id=message.chat.id)
        await query.answer(text(lang, "btn_done"))
        await message.edit_text(text(lang, "done", id=task.id, title=esc(task.title)))
        return
    if task.status is not TaskStatus.OPEN:
        await query.answer(text(lang, "already_done", id=task.id), show_alert=True)
        return
    settings = await reminders.settings_for(query.from_user.id)
    until = await reminders.snooze(task, callback_data.action)
    note = text(lang, "reminder_snoozed", when=when(until, settings.tz, lang))
    await query.answer(note)
    await message.edit_text(f"{message.html_text}\n{note}", reply_markup=None)


def build_router() -> Router:
    """A fresh router per dispatcher: an aiogram router belongs to one parent only."""
    router = Router(name="reminders")
    router.message.register(remind, Command("remind"))
    router.callback_query.register(reminder_button, RemindAction.filter())
    return router
