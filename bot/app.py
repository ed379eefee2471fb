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

from bot.dialogs import DialogIsolation, SqliteDialogStorage
from bot.handlers import build_router
from bot.middlewares import AccessMiddleware, ContextMiddleware
from bot.notifier import Notifier
from bot.texts import LANGUAGES, command_menu
from core.orchestrator import EnterpriseTaskOrchestrator
from core.queries import TaskQueries
from core.settings import RuntimeEnv
from core.users import UserSettings


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
    """The dispatcher with every router, middleware and dependency the handlers ask for.

    `lang` and `tz` are not fixed here: ContextMiddleware looks them up per user.
    Dialog (FSM) state lives in the store (bot/dialogs.py), so a restart resumes a wizard.
    """
    users = UserSettings(orch.store)
    dp = Dispatcher(
        storage=SqliteDialogStorage(orch.store),
        events_isolation=DialogIsolation(),
        orch=orch,
        users=users,
        queries=TaskQueries(orch.store),
        admin_ids=env.admin_ids,
        clock=clock,
    )
    rate = orch.config.security.rate_limiting
    dp.update.outer_middleware(
        ContextMiddleware(users, default_tz=orch.tz, default_lang=orch.config.defaults.language)
    )
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
    """The command menu in every language we speak; English is also the default for others."""
    for lang in LANGUAGES:
        commands = [BotCommand(command=c, description=d) for c, d in command_menu(lang)]
        await bot.set_my_commands(commands, language_code=None if lang == "en" else lang)
