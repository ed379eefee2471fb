"""/tz and /lang: the user's own zone and language, kept in the store's `users` table."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import BotCommand, BotCommandScopeChat, Message

from bot.texts import command_menu, text
from core.users import UserSettings

Clock = Callable[[], datetime]


def _clock_face(now: datetime, tz: ZoneInfo) -> str:
    return f"{now.astimezone(tz):%H:%M}"


async def set_tz(
    message: Message,
    command: CommandObject,
    users: UserSettings,
    lang: str,
    tz: ZoneInfo,
    clock: Clock,
) -> None:
    """`/tz Europe/Moscow` stores the zone; a bare `/tz` shows the current one."""
    key = (command.args or "").strip()
    if not key or message.from_user is None:
        await message.answer(text(lang, "tz_current", tz=tz.key, now=_clock_face(clock(), tz)))
        return
    zone = await users.set_tz(message.from_user.id, key)
    await message.answer(text(lang, "tz_set", tz=zone.key, now=_clock_face(clock(), zone)))


async def set_lang(
    message: Message,
    command: CommandObject,
    users: UserSettings,
    bot: Bot,
    lang: str,
) -> None:
    """`/lang ru` answers in the new language at once; a private chat's menu follows it."""
    choice = (command.args or "").strip().lower()
    if not choice or message.from_user is None:
        await message.answer(text(lang, "lang_usage"))
        return
    lang = await users.set_lang(message.from_user.id, choice)
    if message.chat.type == "private":
        menu = [BotCommand(command=c, description=d) for c, d in command_menu(lang)]
        await bot.set_my_commands(menu, scope=BotCommandScopeChat(chat_id=message.chat.id))
    await message.answer(text(lang, "lang_set"))


def build_router() -> Router:
    """A fresh router per dispatcher: an aiogram router belongs to one parent only."""
    router = Router(name="settings")
    router.message.register(set_tz, Command("tz"))
    router.message.register(set_lang, Command("lang"))
    return router
