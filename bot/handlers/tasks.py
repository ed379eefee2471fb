"""Task commands and buttons: a thin layer from chat to the orchestrator and back.

Every change goes through `bot.handlers.lookup`, which finds the task in this chat and asks
`bot.permissions` whether the user may touch it; every button press is answered exactly once,
with a short plain text, whatever happens.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.fsm.context import FSMContext
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardMarkup,
    Message,
)

from bot.fields import Field, edit_values, field_named
from bot.handlers import wizard
from bot.handlers.lookup import (
    button_message,
    head_and_rest,
    id_and_rest,
    parse_task_id,
    task_to_change,
    task_to_press,
    task_to_show,
)
from bot.keyboards import (
    ListPage,
    TaskAction,
    Verb,
    confirm_delete_keyboard,
    list_keyboard,
    task_keyboard,
)
from bot.permissions import find_task
from bot.rendering import esc, plain, task_card, task_line, when
from bot.replies import answer_long, edit
from bot.texts import text
from core.errors import InputError
from core.models import Task, TaskStatus
from core.orchestrator import EnterpriseTaskOrchestrator
from core.queries import TaskQueries, View, export_csv, export_json, tag_key, view_filter
from core.quickadd import parse_quick_add

SNOOZE_BY = timedelta(hours=1)  # what the card's snooze button adds
Clock = Callable[[], datetime]

_VIEW_WORDS = {
    "open": View.OPEN,
    "today": View.TODAY,
    "overdue": View.OVERDUE,
    "late": View.OVERDUE,
    "all": View.ALL,
    "открытые": View.OPEN,
    "сегодня": View.TODAY,
    "просрочено": View.OVERDUE,
    "просроченные": View.OVERDUE,
    "все": View.ALL,
    "всё": View.ALL,
}


# -- hooks other features fill in ------------------------------------------------------------


@runtime_checkable
class TimeTracking(Protocol):
    """What the card's timer button needs from the "time-tracker" integration."""

    async def start_timer(self, task: Task) -> None: ...


async def snooze(orch: EnterpriseTaskOrchestrator, task: Task, now: datetime) -> Task:
    """Hook for the snooze button: the deadline moves an hour on (from now, if it passed)."""
    base = task.deadline if task.deadline is not None and task.deadline > now else now
    return await orch.update_task(task.id, chat_id=task.chat_id, deadline=base + SNOOZE_BY)


async def start_timer(orch: EnterpriseTaskOrchestrator, task: Task, lang: str) -> str:
    """Hook for the timer button: only a live "time-tracker" integration can start one."""
    tracker = orch.integration("time-tracker")
    if not isinstance(tracker, TimeTracking):
        return text(lang, "timer_off")
    await tracker.start_timer(task)
    return text(lang, "timer_on", id=task.id)


# -- helpers ---------------------------------------------------------------------------------


def _card(task: Task, lang: str, tz: ZoneInfo, now: datetime) -> tuple[str, InlineKeyboardMarkup]:
    return task_card(task, lang, tz, now), task_keyboard(task, lang)


# -- creating and showing --------------------------------------------------------------------


async def new_task(
    message: Message,
    command: CommandObject,
    state: FSMContext,
    orch: EnterpriseTaskOrchestrator,
    lang: str,
    tz: ZoneInfo,
    clock: Clock,
) -> None:
    """`/new <text>` saves at once; a bare `/new` starts the step-by-step wizard."""
    if not (command.args or "").strip():
        await wizard.start_new(message, state, lang)
        return
    parsed = parse_quick_add(command.args or "", now=clock(), tz=tz)
    task = await orch.create_task(
        parsed.title,
        priority=parsed.priority or 3,
        deadline=parsed.deadline,
        tags=parsed.tags,
        chat_id=message.chat.id,
        author_id=message.from_user.id if message.from_user else None,
        assignee=parsed.assignee,
        recurrence=parsed.recurrence.to_text() if parsed.recurrence else None,
    )
    await wizard.reply_created(message, task, lang, tz, clock())


async def show_task(
    message: Message,
    command: CommandObject,
    orch: EnterpriseTaskOrchestrator,
    lang: str,
    tz: ZoneInfo,
    clock: Clock,
) -> None:
    task = await task_to_show(message, orch, parse_task_id(command.args), lang, usage="task_usage")
    if task is None:
        return
    body, markup = _card(task, lang, tz, clock())
    await message.answer(body, reply_markup=markup)


# -- lists -----------------------------------------------------------------------------------


def _view_of(args: str | None) -> tuple[View, str | None]:
    word, _ = head_and_rest(args)
    if not word:
        return View.OPEN, None
    view = _VIEW_WORDS.get(word.lower())
    return (view, None) if view is not None else (View.TAG, word.lstrip("#").lower())


async def _render_list(
    queries: TaskQueries,
    chat_id: int,
    view: View,
    tag: str | None,
    page: int,
    lang: str,
    tz: ZoneInfo,
    now: datetime,
) -> tuple[str, InlineKeyboardMarkup, str]:
    """Body, buttons and the page note for one page of one view."""
    result = await queries.page(chat_id, view_filter(view, now=now, tz=tz, tag=tag), page=page)
    header = text(lang, f"list.{view.value}", count=result.total, tag=esc(tag or ""))
    if not result.tasks:
        empty = text(lang, "no_tasks") if view is View.OPEN else text(lang, "list_empty")
        body = empty if view is View.OPEN else f"{header}\n{empty}"
    else:
        body = "\n".join([header, *(task_line(t, tz, lang, now) for t in result.tasks)])
    markup = list_keyboard(result, view, tag_key(tag) if tag else "", lang)
    note = text(lang, "page_info", page=result.page + 1, pages=result.pages)
    return body, markup, note


async def list_tasks(
    message: Message,
    command: CommandObject,
    queries: TaskQueries,
    lang: str,
    tz: ZoneInfo,
    clock: Clock,
) -> None:
    """`/list`, `/list today|overdue|all`, `/list #tag`: one page, with buttons for more."""
    view, tag = _view_of(command.args)
    body, markup, _ = await _render_list(queries, message.chat.id, view, tag, 0, lang, tz, clock())
    await answer_long(message, body, reply_markup=markup)


async def list_page(
    query: CallbackQuery,
    callback_data: ListPage,
    queries: TaskQueries,
    lang: str,
    tz: ZoneInfo,
    clock: Clock,
) -> None:
    message = await button_message(query, lang)
    if message is None:
        return
    tag = None
    if callback_data.view is View.TAG:
        tag = await queries.tag_by_key(message.chat.id, callback_data.tag)
        if tag is None:
            await query.answer(text(lang, "stale_button"))
            return
    body, markup, note = await _render_list(
        queries, message.chat.id, callback_data.view, tag, callback_data.page, lang, tz, clock()
    )
    await edit(message, body, reply_markup=markup)
    await query.answer(note)


async def export(
    message: Message,
    command: CommandObject,
    queries: TaskQueries,
    lang: str,
    tz: ZoneInfo,
    clock: Clock,
) -> None:
    """`/export`: the chat's open and done tasks as a JSON and a CSV file (`ics`: calendar)."""
    wanted = (command.args or "").strip().lower()
    if wanted not in ("", "json", "csv"):
        await message.answer(text(lang, "export_usage", what=esc(wanted[:40])))
        return
    tasks = await queries.everything(message.chat.id)
    if not tasks:
        await message.answer(text(lang, "export_empty"))
        return
    now = clock()
    stem = f"tasks-{now.astimezone(tz):%Y-%m-%d}"
    caption = text(lang, "export_caption", count=len(tasks))
    files = (
        (export_json(tasks, tz=tz, now=now), f"{stem}.json"),
        (export_csv(tasks, tz=tz), f"{stem}.csv"),
    )
    for data, name in files:
        await message.answer_document(BufferedInputFile(data, filename=name), caption=caption)


# -- changing by command ---------------------------------------------------------------------


async def done(
    message: Message,
    command: CommandObject,
    orch: EnterpriseTaskOrchestrator,
    bot: Bot,
    lang: str,
) -> None:
    task_id = parse_task_id(command.args)
    task = await task_to_change(message, orch, bot, task_id, lang, usage="done_usage")
    if task is None:
        return
    if task.status is TaskStatus.DONE:
        await message.answer(text(lang, "already_done", id=task_id))
    else:
        task = await orch.complete_task(task.id, chat_id=message.chat.id)
        await message.answer(text(lang, "done", id=task.id, title=esc(task.title)))


async def edit_task(
    message: Message,
    command: CommandObject,
    state: FSMContext,
    orch: EnterpriseTaskOrchestrator,
    bot: Bot,
    lang: str,
    tz: ZoneInfo,
    clock: Clock,
) -> None:
    """`/edit 12 title New words` changes at once; `/edit 12` or `/edit 12 title` asks."""
    task_id, rest = id_and_rest(command.args)
    task = await task_to_change(message, orch, bot, task_id, lang, usage="edit_usage")
    if task is None:
        return
    word, value = head_and_rest(rest)
    if not word:
        await wizard.begin_edit(message, state, task, lang)
        return
    field = field_named(word)
    if field is None:
        raise InputError(
            f"no field {word!r}", code="bad_field", suggestion=f"/edit {task_id} title"
        )
    if not value.strip():
        await wizard.ask_value(message, state, task, field, lang)
        return
    now = clock()
    values = edit_values(field, value, now=now, tz=tz)
    await wizard.apply_edit(message, orch, task, values, lang, tz, now)


async def deadline(
    message: Message,
    command: CommandObject,
    orch: EnterpriseTaskOrchestrator,
    bot: Bot,
    lang: str,
    tz: ZoneInfo,
    clock: Clock,
) -> None:
    """`/deadline 12 tomorrow 18:00` sets it; `/deadline 12 none` clears it."""
    task_id, rest = id_and_rest(command.args)
    wanted = task_id if rest else None  # a bare id says nothing about the deadline
    task = await task_to_change(message, orch, bot, wanted, lang, usage="deadline_usage")
    if task is None:
        return
    now = clock()
    values = edit_values(Field.DEADLINE, rest, now=now, tz=tz)
    task = await orch.update_task(task.id, chat_id=task.chat_id, **values)
    if task.deadline is None:
        await message.answer(text(lang, "deadline_cleared", id=task.id))
    else:
        shown = when(task.deadline, tz, lang, now)
        await message.answer(text(lang, "deadline_set", id=task.id, when=shown))


async def delete(
    message: Message,
    command: CommandObject,
    orch: EnterpriseTaskOrchestrator,
    bot: Bot,
    lang: str,
) -> None:
    """`/delete 12` asks first; the buttons under the question do the rest."""
    task_id = parse_task_id(command.args)
    task = await task_to_change(message, orch, bot, task_id, lang, usage="delete_usage")
    if task is None:
        return
    body = text(lang, "delete_confirm", id=task.id, title=esc(task.title))
    await message.answer(body, reply_markup=confirm_delete_keyboard(task.id, lang))


# -- buttons ---------------------------------------------------------------------------------


async def task_button(
    query: CallbackQuery,
    callback_data: TaskAction,
    orch: EnterpriseTaskOrchestrator,
    bot: Bot,
    lang: str,
    tz: ZoneInfo,
    clock: Clock,
) -> None:
    """Card, done, snooze, timer, delete (ask, confirm, keep): one answer per press."""
    message = await button_message(query, lang)
    if message is None:
        return
    verb, task_id = callback_data.action, callback_data.task_id
    if verb is Verb.CARD:
        task = await find_task(orch, message.chat.id, task_id)
        if task is None:
            await query.answer(plain(text(lang, "not_found", id=task_id)), show_alert=True)
            return
        body, markup = _card(task, lang, tz, clock())
        await message.answer(body, reply_markup=markup)
        await query.answer()
        return
    found = await task_to_press(query, message, orch, bot, task_id, lang)
    if found is None:
        return
    note = await _press(message, verb, found, orch, lang, tz, clock())
    await query.answer(plain(note)[:200])


async def _press(
    message: Message,
    verb: Verb,
    task: Task,
    orch: EnterpriseTaskOrchestrator,
    lang: str,
    tz: ZoneInfo,
    now: datetime,
) -> str:
    """Do what the button says to a task the user may change; returns the answer's text."""
    if verb is Verb.DONE:
        already = task.status is TaskStatus.DONE
        if not already:
            task = await orch.complete_task(task.id, chat_id=task.chat_id)
        await edit(message, text(lang, "done", id=task.id, title=esc(task.title)))
        return text(lang, "already_done", id=task.id) if already else text(lang, "btn_done")
    if verb is Verb.SNOOZE:
        if task.status is not TaskStatus.OPEN:
            return text(lang, "reasons.bad_state")
        task = await snooze(orch, task, now)
        await edit(message, *_card(task, lang, tz, now))
        assert task.deadline is not None
        return text(lang, "snoozed", id=task.id, when=when(task.deadline, tz, lang, now))
    if verb is Verb.TIMER:
        return await start_timer(orch, task, lang)
    if verb is Verb.DELETE:
        body = text(lang, "delete_confirm", id=task.id, title=esc(task.title))
        await edit(message, body, reply_markup=confirm_delete_keyboard(task.id, lang))
        return ""
    if verb is Verb.CONFIRM_DELETE:
        task = await orch.delete_task(task.id, chat_id=task.chat_id)
        await edit(message, text(lang, "deleted", id=task.id, title=esc(task.title)))
        return text(lang, "deleted", id=task.id, title=esc(task.title))
    if verb is Verb.KEEP:
        await edit(message, *_card(task, lang, tz, now))
        return text(lang, "kept", id=task.id)
    return text(lang, "stale_button")  # EDIT is the wizard's; it never reaches here


async def stale_button(query: CallbackQuery, lang: str) -> None:
    """Any press we cannot decode (old layout, forged data) gets a short answer."""
    await query.answer(text(lang, "stale_button"))


async def fallback(message: Message, bot: Bot, lang: str) -> None:
    """Text nobody asked for: a hint in private; in groups, only commands named at us."""
    body = message.text or ""
    if message.chat.type != "private":
        command = body.split(maxsplit=1)[0] if body.startswith("/") else ""
        mention = command.partition("@")[2].lower()
        me = await bot.me()
        if not mention or mention != (me.username or "").lower():
            return
    key = "unknown_command" if body.startswith("/") else "use_new"
    await message.answer(text(lang, key))


def build_router() -> Router:
    """A fresh router per dispatcher: an aiogram router belongs to one parent only."""
    router = Router(name="tasks")
    router.message.register(new_task, Command("new"))
    router.message.register(show_task, Command("task"))
    router.message.register(list_tasks, Command("list"))
    router.message.register(export, Command("export"))
    router.message.register(done, Command("done"))
    router.message.register(edit_task, Command("edit"))
    router.message.register(deadline, Command("deadline"))
    router.message.register(delete, Command("delete"))
    router.callback_query.register(list_page, ListPage.filter())
    router.callback_query.register(task_button, TaskAction.filter(F.action != Verb.EDIT))
    router.callback_query.register(stale_button)  # last: whatever no handler above took
    router.message.register(fallback, F.text)
    return router
