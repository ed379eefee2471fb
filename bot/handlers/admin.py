"""Admin-only commands."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message, User

from bot.rendering import esc
from bot.texts import text
from core.orchestrator import EnterpriseTaskOrchestrator

_ICONS = {"ONLINE": "🟢", "DEGRADED": "🟡", "ERROR": "🔴", "DISABLED": "⚪", "STARTING": "⏳"}


def health_table(orch: EnterpriseTaskOrchestrator) -> list[tuple[str, str, str, str]]:
    """(server, status, latency, breaker) rows in priority order, for chat and terminal."""
    return health_rows(orch.get_health_status())


def health_rows(health: Mapping[str, Any]) -> list[tuple[str, str, str, str]]:
    """The rows of `health_table` from a health status (live, or read from a snapshot)."""
    status = health["server_health"]
    assert isinstance(status, dict)
    rows = []
    for name, info in sorted(status.items(), key=lambda kv: (kv[1]["priority"], kv[0])):
        latency = info["latency_ms"]
        rows.append(
            (
                name,
                info["status"],
                "-" if latency is None else f"{latency:.0f} ms",
                info["breaker"],
            )
        )
    return rows


async def admin_sender(message: Message, admin_ids: frozenset[int], lang: str) -> User | None:
    """The sender if they are one of the bot's admins, else None once they have been told."""
    user = message.from_user
    if user is None or user.id not in admin_ids:
        await message.answer(text(lang, "admins_only"))
        return None
    return user


async def health(
    message: Message,
    orch: EnterpriseTaskOrchestrator,
    lang: str,
    admin_ids: frozenset[int],
) -> None:
    if await admin_sender(message, admin_ids, lang) is None:
        return
    await orch.check_health()
    overall = orch.get_health_status()["overall"]
    lines = [text(lang, "health_header", overall=overall)]
    for name, status, latency, breaker in health_table(orch):
        extra = "" if breaker == "closed" else f" · breaker {breaker}"
        lines.append(f"{_ICONS.get(status, '')} <code>{esc(name)}</code> {status} {latency}{extra}")
    depth = await orch.outbox_depth()
    if depth:
        lines.append("outbox: " + ", ".join(f"{esc(k)}={v}" for k, v in sorted(depth.items())))
    await message.answer("\n".join(lines))


def build_router() -> Router:
    """A fresh router per dispatcher: an aiogram router belongs to one parent only."""
    router = Router(name="admin")
    router.message.register(health, Command("health"))
    return router
