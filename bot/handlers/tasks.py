"""Task commands and buttons: a thin layer from chat to the orchestrator and back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from aiogram import F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import CallbackQuery, Message

from bot.keyboards import TaskAction, task_keyboard
from bot.rendering import esc, split_message, task_details, task_line
from bot.texts import text
from core.errors import TaskNotFound
from core.models import TaskStatus
from core.orchestrator import EnterpriseTaskOrchestrator
from core.quickadd import parse_quick_add

router = Router(name="tasks")


@router.message(Command("new"))
async def new_task(
    message: Message,
    command: CommandObject,
    orch: EnterpriseTaskOrchestrator,
    lang: str,
    tz: ZoneInfo,
    clock: Callable[[], datetime],
) -> None:
    if not (command.args or "").strip():
        await message.answer(text(lang, "new_usage"))
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
    )
    body = text(
        lang, "created", id=task.id, title=esc(task.title), details=task_details(task, lang, tz)
    )
    await message.answer(body, reply_markup=task_keyboard(task, lang))


@router.message(Command("list"))
async def list_tasks(
    message: Message, orch: EnterpriseTaskOrchestrator, lang: str, tz: ZoneInfo
) -> None:
    tasks = await orch.list_tasks(message.chat.id, limit=200)
    if not tasks:
        await message.answer(text(lang, "no_tasks"))
        return
    lines = [text(lang, "list_header", count=len(tasks))]
    lines += [task_line(t, tz) for t in tasks]
    for part in split_message("\n".join(lines)):
        await message.answer(part)


def _task_id(raw: str | None) -> int | None:
    value = (raw or "").strip().lstrip("#")
    return int(value) if value.isdigit() and len(value) < 12 else None


@router.message(Command("done"))
async def done(
    message: Message, command: CommandObject, orch: EnterpriseTaskOrchestrator, lang: str
) -> None:
    task_id = _task_id(command.args)
    if task_id is None:
        await message.answer(text(lang, "done_usage"))
        return
    await _complete(message.chat.id, task_id, orch, lang, message.answer)


async def _complete(
    chat_id: int,
    task_id: int,
    orch: EnterpriseTaskOrchestrator,
    lang: str,
    reply: Callable[[str], object],
) -> None:
    try:
        before = await orch.get_task(task_id, chat_id=chat_id)
    except TaskNotFound:
        await reply(text(lang, "not_found", id=task_id))  # type: ignore[misc]
        return
    if before.status is TaskStatus.DONE:
        await reply(text(lang, "already_done", id=task_id))  # type: ignore[misc]
        return
    task = await orch.complete_task(task_id, chat_id=chat_id)
    await reply(text(lang, "done", id=task.id, title=esc(task.title)))  # type: ignore[misc]


@router.callback_query(TaskAction.filter(F.action == "done"))
async def done_button(
    query: CallbackQuery,
    callback_data: TaskAction,
    orch: EnterpriseTaskOrchestrator,
    lang: str,
) -> None:
    message = query.message
    if not isinstance(message, Message):
        await query.answer(text(lang, "stale_button"))
        return
    try:
        task = await orch.get_task(callback_data.task_id, chat_id=message.chat.id)
    except TaskNotFound:
        await query.answer(text(lang, "not_found", id=callback_data.task_id), show_alert=True)
        return
    if task.status is TaskStatus.OPEN:
        task = await orch.complete_task(task.id, chat_id=message.chat.id)
    done_text = text(lang, "done", id=task.id, title=esc(task.title))
    await query.answer(text(lang, "btn_done"))
    if message.text != done_text.replace("<b>", "").replace("</b>", ""):
        await message.edit_text(done_text, reply_markup=None)


@router.callback_query(TaskAction.filter(F.action == "del"))
async def delete_button(
    query: CallbackQuery,
    callback_data: TaskAction,
    orch: EnterpriseTaskOrchestrator,
    lang: str,
) -> None:
    message = query.message
    if not isinstance(message, Message):
        await query.answer(text(lang, "stale_button"))
        return
    try:
        task = await orch.delete_task(callback_data.task_id, chat_id=message.chat.id)
    except TaskNotFound:
        await query.answer(text(lang, "not_found", id=callback_data.task_id), show_alert=True)
        return
    await query.answer()
    await message.edit_text(text(lang, "deleted", id=task.id, title=esc(task.title)))


@router.callback_query()
async def stale_button(query: CallbackQuery, lang: str) -> None:
    """Any press we cannot decode (old layout, forged data) gets a short answer."""
    await query.answer(text(lang, "stale_button"))
