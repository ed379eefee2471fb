"""Outer middlewares: who is asking (language, access), how often (rate limit), and one log line."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, Message, TelegramObject, Update, User

from bot.texts import pick_language, text

log = logging.getLogger("taskbot.bot")

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


def _user_of(update: Update) -> User | None:
    event = update.message or update.callback_query or update.edited_message
    return event.from_user if event is not None else None


class ContextMiddleware(BaseMiddleware):
    """Puts `lang` into handler data and logs `update.handled` with ids and duration."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        user = _user_of(event)
        data["lang"] = pick_language(user.language_code if user else None)
        began = time.perf_counter()
        outcome = "ok"
        try:
            return await handler(event, data)
        except BaseException:
            outcome = "error"
            raise
        finally:
            chat = data.get("event_chat")
            log.info(
                "update.handled",
                extra={
                    "update_id": event.update_id,
                    "kind": event.event_type,
                    "chat_id": chat.id if chat else None,
                    "user_id": user.id if user else None,
                    "outcome": outcome,
                    "duration_ms": round((time.perf_counter() - began) * 1000, 2),
                },
            )


class AccessMiddleware(BaseMiddleware):
    """Allowlist and per-user rate limit; a refused user gets a polite reply, not silence."""

    def __init__(self, *, allowed: frozenset[int], per_minute: int | None) -> None:
        self.allowed = allowed
        self.per_minute = per_minute
        # LIMIT: one deque per user who ever wrote, never evicted; memory grows with the
        # number of distinct users (~100 floats each). An LRU keyed on last use would cap it.
        self._hits: dict[int, deque[float]] = {}

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        user = _user_of(event)
        if user is None:
            return await handler(event, data)
        lang = data.get("lang", "en")
        if self.allowed and user.id not in self.allowed:
            await self._refuse(event, text(lang, "not_allowed"))
            return None
        wait = self._over_limit(user.id)
        if wait is not None:
            log.warning("update.rate_limited", extra={"user_id": user.id})
            await self._refuse(event, text(lang, "rate_limited", seconds=wait))
            return None
        return await handler(event, data)

    def _over_limit(self, user_id: int) -> int | None:
        if not self.per_minute:
            return None
        now = time.monotonic()
        hits = self._hits.setdefault(user_id, deque())
        while hits and now - hits[0] >= 60:
            hits.popleft()
        if len(hits) >= self.per_minute:
            return max(1, int(60 - (now - hits[0])) + 1)
        hits.append(now)
        return None

    @staticmethod
    async def _refuse(update: Update, reply: str) -> None:
        if isinstance(update.callback_query, CallbackQuery):
            await update.callback_query.answer(reply, show_alert=True)
        elif isinstance(update.message, Message):
            await update.message.answer(reply)
