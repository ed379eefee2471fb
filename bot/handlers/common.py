"""/start and /help."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command, CommandStart
from aiogram.types import Message

from bot.rendering import esc
from bot.texts import text


async def start(message: Message, lang: str) -> None:
    name = message.from_user.first_name if message.from_user else "there"
    await message.answer(text(lang, "start", name=esc(name)))


async def help_(message: Message, lang: str) -> None:
    await message.answer(text(lang, "help"))


def build_router() -> Router:
    """A fresh router per dispatcher: an aiogram router belongs to one parent only."""
    router = Router(name="common")
    router.message.register(start, CommandStart())
    router.message.register(help_, Command("help"))
    return router
