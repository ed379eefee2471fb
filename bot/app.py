"""Wiring of the Telegram edge: a Bot pointed at an API base, a Dispatcher with our routers."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.types import BotCommand

from bot.handlers import build_router
from bot.middlewares import AccessMiddleware, ContextMiddleware
from bot.notifier import Notifier
from core.orchestrator import EnterpriseTaskOrchestrator
from core.settings import RuntimeEnv

COMMANDS = {
    "en": [
        ("new", "Add a task"),
        ("list", "Open tasks"),
        ("done", "Mark a task done"),
        ("help", "How to use the bot"),
    ],
    "ru": [
        ("new", "Новая задача"),
        ("list", "Открытые задачи"),
        ("done", "Отметить выполненной"),
        ("help", "Как пользоваться ботом"),
    ],
}


def create_bot(token: str, api_base: str | None = None) -> Bot:
    """A Bot whose requests go to `api_base` (the local sandbox) or to Telegram."""
    session = AiohttpSession(api=TelegramAPIServer.from_base(api_base)) if api_base else None
    return Bot(token, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))


def build_dispatcher(
    orch: EnterpriseTaskOrchestrator,
    env: RuntimeEnv,
    *,
    clock: Callable[[], datetime] = lambda: datetime.now(UTC),
) -> Dispatcher:
    """The dispatcher with every router, middleware and dependency the handlers ask for."""
    dp = Dispatcher(
        orch=orch,
        admin_ids=env.admin_ids,
        tz=orch.tz,
        clock=clock,
    )
    rate = orch.config.security.rate_limiting
    dp.update.outer_middleware(ContextMiddleware())
    dp.update.outer_middleware(
        AccessMiddleware(
            allowed=env.allowed_user_ids,
            per_minute=rate.requests_per_minute if rate.enabled else None,
        )
    )
    dp.include_router(build_router())
    return dp


def attach_notifier(orch: EnterpriseTaskOrchestrator, bot: Bot, env: RuntimeEnv) -> Notifier:
    notifier = Notifier(bot, admin_chat_id=env.admin_chat_id, lang=orch.config.defaults.language)
    orch.health.listeners.append(notifier.health_changed)
    orch.task_failed_listeners.append(notifier.task_failed)
    return notifier


async def register_commands(bot: Bot) -> None:
    for lang, items in COMMANDS.items():
        commands = [BotCommand(command=c, description=d) for c, d in items]
        await bot.set_my_commands(commands, language_code=None if lang == "en" else lang)
