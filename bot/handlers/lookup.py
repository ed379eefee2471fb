"""Finding the task a command or a button names, telling the user when there is none.

Every helper here returns the task (or the message a button sits under), or None once it has
answered the user: the usage text, "not found", or why they may not change it. A handler's
only duty on None is to stop; answering again would send a second reply.
"""

from __future__ import annotations

from aiogram import Bot
from aiogram.types import CallbackQuery, Message

from bot.permissions import find_task, task_for_change
from bot.rendering import plain
from bot.texts import text
from core.models import Task
from core.orchestrator import EnterpriseTaskOrchestrator

# -- reading the id --------------------------------------------------------------------------


def parse_task_id(raw: str | None) -> int | None:
    """`12` or `#12` -> 12; anything else (words, 12 digits or more) -> None."""
    value = (raw or "").strip().lstrip("#")
    return int(value) if value.isdigit() and len(value) < 12 else None


def head_and_rest(args: str | None) -> tuple[str, str]:
    """'12  title New words' -> ('12', 'title New words'); any whitespace separates."""
    parts = (args or "").split(maxsplit=1)
    head = parts[0] if parts else ""
    return head, parts[1].strip() if len(parts) > 1 else ""


def id_and_rest(args: str | None) -> tuple[int | None, str]:
    """'12 Called the landlord' -> (12, 'Called the landlord')."""
    head, rest = head_and_rest(args)
    return parse_task_id(head), rest


# -- commands --------------------------------------------------------------------------------


async def task_to_show(
    message: Message,
    orch: EnterpriseTaskOrchestrator,
    task_id: int | None,
    lang: str,
    *,
    usage: str,
) -> Task | None:
    """The task of this chat to read; a missing id gets the `usage` text."""
    if task_id is None:
        await message.answer(text(lang, usage))
        return None
    task = await find_task(orch, message.chat.id, task_id)
    if task is None:
        await message.answer(text(lang, "not_found", id=task_id))
    return task


async def task_to_change(
    message: Message,
    orch: EnterpriseTaskOrchestrator,
    bot: Bot,
    task_id: int | None,
    lang: str,
    *,
    usage: str | None,
) -> Task | None:
    """The task the sender may change; a missing id gets `usage` (None: no answer at all)."""
    if task_id is None:
        if usage is not None:
            await message.answer(text(lang, usage))
        return None
    found = await task_for_change(
        orch, bot, message.chat, message.from_user, task_id, lang, sender_chat=message.sender_chat
    )
    if isinstance(found, str):
        await message.answer(found)
        return None
    return found


# -- buttons ---------------------------------------------------------------------------------


async def button_message(query: CallbackQuery, lang: str) -> Message | None:
    """The message under the pressed button; one Telegram no longer gives us is stale."""
    message = query.message
    if not isinstance(message, Message):
        await query.answer(text(lang, "stale_button"))
        return None
    return message


async def task_to_press(
    query: CallbackQuery,
    message: Message,
    orch: EnterpriseTaskOrchestrator,
    bot: Bot,
    task_id: int,
    lang: str,
) -> Task | None:
    """The task the presser may change; a refusal is answered as an alert."""
    found = await task_for_change(orch, bot, message.chat, query.from_user, task_id, lang)
    if isinstance(found, str):
        await query.answer(plain(found), show_alert=True)
        return None
    return found
