"""`/notify`: a chat's extra channels (webhook, e-mail) beside Telegram.

`/notify` shows them, `/notify webhook <url>` and `/notify email <address>` set one (and send
a test message at once, so the user learns right away whether it arrives), `/notify off`
removes them all. In a group only its admins may change them: the channels receive the
group's task news.
"""

from __future__ import annotations

import re

from aiogram import Bot, Router
from aiogram.enums import ChatType
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.permissions import is_group_admin
from bot.rendering import esc
from bot.texts import text
from core.errors import IntegrationError
from core.orchestrator import EnterpriseTaskOrchestrator
from integrations.mcp.errors import one_line
from integrations.notifications import Channel, ChannelKind, NotificationsIntegration

NOTIFICATIONS = "notifications"
_KINDS = {"webhook": ChannelKind.WEBHOOK, "email": ChannelKind.EMAIL, "mail": ChannelKind.EMAIL}
_OFF = ("off", "none", "выкл", "нет")


def _line(channel: Channel, lang: str) -> str:
    return f"• {text(lang, f'channel.{channel.kind.value}')}: <code>{esc(channel.target)}</code>"


async def notify(
    message: Message,
    command: CommandObject,
    orch: EnterpriseTaskOrchestrator,
    bot: Bot,
    lang: str,
) -> None:
    integration = orch.integration(NOTIFICATIONS)
    if not isinstance(integration, NotificationsIntegration):
        await message.answer(text(lang, "notify_disabled"))
        return
    chat_id = message.chat.id
    words = (command.args or "").split(maxsplit=1)
    if not words:
        channels = await integration.channels.of(chat_id)
        if not channels:
            await message.answer(text(lang, "notify_none"))
            return
        lines = "\n".join(_line(c, lang) for c in channels)
        await message.answer(text(lang, "notify_current", channels=lines))
        return
    verb = words[0].lower()
    if verb not in _OFF and (verb not in _KINDS or len(words) < 2):
        await message.answer(text(lang, "notify_usage"))
        return
    if not await _may_configure(message, bot):
        await message.answer(text(lang, "notify_admins"))
        return
    if verb in _OFF:
        removed = await integration.channels.clear(chat_id)
        await message.answer(text(lang, "notify_off", count=removed))
        return
    before = {c.kind: c.target for c in await integration.channels.of(chat_id)}
    channel = await integration.set_channel(chat_id, _KINDS[verb], words[1])
    kind, target = text(lang, f"channel.{channel.kind.value}"), esc(channel.target)
    replaced = before.get(channel.kind)
    note = ""
    if replaced is not None and replaced != channel.target:
        note = text(lang, "notify_replaced", kind=kind, old=esc(replaced)) + "\n"
    try:
        delivery = await integration.test_channel(channel)
        problem = None if delivery.status == "sent" else delivery.error or delivery.status
    except IntegrationError as exc:
        problem = str(exc)
    if problem is None:
        await message.answer(note + text(lang, "notify_saved", kind=kind, target=target))
        return
    error = esc(one_line(_reason(problem), 120))
    failed = text(lang, "notify_saved_failed", kind=kind, target=target, error=error)
    await message.answer(note + failed)


def _reason(problem: str) -> str:
    """The server's failure as a person reads it: 'Connection refused', not the class name."""
    return re.sub(r"^(?:\w+(?:Error|Refused|Exception): )?(?:\[Errno \d+\] )?", "", problem)


async def _may_configure(message: Message, bot: Bot) -> bool:
    """Anyone in a private chat; in a group its admins (or the group posting as itself)."""
    if message.chat.type == ChatType.PRIVATE:
        return True
    if message.sender_chat is not None and message.sender_chat.id == message.chat.id:
        return True
    user = message.from_user
    return user is not None and await is_group_admin(bot, message.chat.id, user.id)


def build_router() -> Router:
    """A fresh router per dispatcher: an aiogram router belongs to one parent only."""
    router = Router(name="notify")
    router.message.register(notify, Command("notify"))
    return router
