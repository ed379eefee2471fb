"""`/backup` for admins: one backup now, answered with its id, size and what it holds."""

from __future__ import annotations

import logging

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message

from bot.handlers.admin import admin_sender
from bot.rendering import esc
from bot.texts import text
from core.errors import IntegrationError
from core.orchestrator import EnterpriseTaskOrchestrator
from integrations.backup import BackupIntegration
from integrations.mcp.errors import one_line

log = logging.getLogger("taskbot.bot")

BACKUP = "backup"


def human_size(size: int) -> str:
    """`812 B`, `14.2 KB`, `3.1 MB`: a size people read at a glance."""
    value = float(size)
    for unit in ("B", "KB", "MB", "GB"):
        if value < 1024 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


async def backup_now(
    message: Message,
    orch: EnterpriseTaskOrchestrator,
    lang: str,
    admin_ids: frozenset[int],
) -> None:
    user = await admin_sender(message, admin_ids, lang)
    if user is None:
        return
    backups = orch.integration(BACKUP)
    if not isinstance(backups, BackupIntegration):
        await message.answer(text(lang, "backup_off"))
        return
    try:
        info = await backups.create(f"by {user.id}")
    except IntegrationError as exc:
        log.error("backup.failed", extra={"error": str(exc)})
        error = esc(one_line(str(exc), 200))
        await message.answer(text(lang, "backup_failed", error=error))
        return
    await message.answer(
        text(
            lang,
            "backup_done",
            id=esc(info.backup_id),
            size=human_size(info.size),
            components=esc(", ".join(info.components)),
        )
    )


def build_router() -> Router:
    """A fresh router per dispatcher: an aiogram router belongs to one parent only."""
    router = Router(name="backup")
    router.message.register(backup_now, Command("backup"))
    return router
