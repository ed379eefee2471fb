"""Sending and editing chat messages so that a reply never fails for its own shape.

Two promises: a reply of any length arrives (split at lines into messages Telegram accepts),
and editing a message into what it already shows is a quiet no-op, not an error. Every other
Telegram error still propagates to the one error handler.
"""

from __future__ import annotations

from aiogram import Bot
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import InlineKeyboardMarkup, Message

from bot.rendering import split_message

_NOT_MODIFIED = "message is not modified"
_GONE = "message to edit not found"


async def answer_long(
    message: Message,
    body: str,
    reply_markup: InlineKeyboardMarkup | None = None,
) -> Message:
    """Send `body` in as many messages as it needs; buttons go on the last one."""
    parts = split_message(body) or [body]
    sent = message
    for index, part in enumerate(parts):
        markup = reply_markup if index == len(parts) - 1 else None
        sent = await message.answer(part, reply_markup=markup)
    return sent


async def edit(
    message: Message,
    body: str,
    reply_markup: InlineKeyboardMarkup | None = None,
) -> bool:
    """Edit text and buttons; False when the message already showed exactly that.

    Callers edit short bodies (a card, a page of ten lines); a longer one keeps its first part.
    """
    parts = split_message(body) or [body]
    try:
        await message.edit_text(parts[0], reply_markup=reply_markup)
    except TelegramBadRequest as exc:
        if _NOT_MODIFIED in str(exc.message):
            return False
        raise
    return True


async def drop_buttons(bot: Bot, chat_id: int, message_id: int) -> None:
    """Best effort: take the buttons off an old prompt, so a late press cannot reach it."""
    try:
        await bot.edit_message_reply_markup(chat_id=chat_id, message_id=message_id)
    except TelegramBadRequest as exc:
        if _NOT_MODIFIED not in str(exc.message) and _GONE not in str(exc.message):
            raise
