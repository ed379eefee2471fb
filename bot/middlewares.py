"""Outer middlewares: who is asking (language, zone, access), how often, and one log line."""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any
from zoneinfo import ZoneInfo

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, Message, TelegramObject, Update, User

from bot.texts import LANGUAGES, text
from core.errors import InputError
from core.users import UserSettings, load_zone

log = logging.getLogger("taskbot.bot")

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]
WINDOW_S = 60.0  # the rate limit counts requests over this trailing window
_UTC = ZoneInfo("UTC")


def _user_of(update: Update) -> User | None:
    event = update.message or update.callback_query or update.edited_message
    return event.from_user if event is not None else None


class ContextMiddleware(BaseMiddleware):
    """Puts the user's `lang` and `tz` into handler data; logs `update.handled` per update.

    Language: the one chosen with /lang, else Telegram's `language_code` when we speak it,
    else the configured default. Zone: the one chosen with /tz, else the configured default.
    """

    def __init__(
        self,
        users: UserSettings | None = None,
        *,
        default_tz: ZoneInfo = _UTC,
        default_lang: str = "en",
    ) -> None:
        self.users = users
        self.default_tz = default_tz
        self.default_lang = default_lang

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        user = _user_of(event)
        data["lang"], data["tz"] = await self._prefs(user)
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

    async def _prefs(self, user: User | None) -> tuple[str, ZoneInfo]:
        if user is None:
            return self.default_lang, self.default_tz
        code = (user.language_code or "").split("-")[0].lower()
        lang = code if code in LANGUAGES else self.default_lang
        if self.users is None:
            return lang, self.default_tz
        prefs = await self.users.get(user.id)
        tz = self.default_tz
        if prefs.tz:
            try:
                tz = load_zone(prefs.tz)
            except InputError:  # tzdata lost a zone since it was stored: fall back, say so
                log.warning("user.tz_invalid", extra={"user_id": user.id})
        return (prefs.lang if prefs.lang in LANGUAGES else lang), tz


class AccessMiddleware(BaseMiddleware):
    """Allowlist and per-user rate limit; a refused user gets a polite reply, not silence.

    Over the limit, the first refused message is answered with how long to wait; later ones
    inside the same wait are dropped quietly, so a flood cannot make the bot flood back.
    A refused button press is always answered (Telegram shows a spinner until it is).
    """

    def __init__(
        self,
        *,
        allowed: frozenset[int],
        per_minute: int | None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.allowed = allowed
        self.per_minute = per_minute
        self._clock = clock
        # LIMIT: one deque per user who ever wrote, never evicted; memory grows with the
        # number of distinct users (~100 floats each). An LRU keyed on last use would cap it.
        self._hits: dict[int, deque[float]] = {}
        self._warned_until: dict[int, float] = {}

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        assert isinstance(event, Update)
        user = _user_of(event)
        if user is None:
            return await handler(event, data)
        lang = data.get("lang", "en")
        if self.allowed and user.id not in self.allowed:
            log.info("update.not_allowed", extra={"user_id": user.id})
            await self._refuse(event, text(lang, "not_allowed"))
            return None
        wait = self._over_limit(user.id)
        if wait is not None:
            log.warning("update.rate_limited", extra={"user_id": user.id})
            now = self._clock()
            if isinstance(event.callback_query, CallbackQuery):
                await self._refuse(event, text(lang, "rate_limited", seconds=wait))
            elif self._warned_until.get(user.id, 0.0) <= now:
                self._warned_until[user.id] = now + wait
                await self._refuse(event, text(lang, "rate_limited", seconds=wait))
            return None
        self._warned_until.pop(user.id, None)
        return await handler(event, data)

    def _over_limit(self, user_id: int) -> int | None:
        """Seconds until one more request is allowed, or None (and the request counts)."""
        if not self.per_minute:
            return None
        now = self._clock()
        hits = self._hits.setdefault(user_id, deque())
        while hits and now - hits[0] >= WINDOW_S:
            hits.popleft()
        if len(hits) >= self.per_minute:
            return max(1, int(WINDOW_S - (now - hits[0])) + 1)
        hits.append(now)
        return None

    @staticmethod
    async def _refuse(update: Update, reply: str) -> None:
        if isinstance(update.callback_query, CallbackQuery):
            await update.callback_query.answer(reply, show_alert=True)
        elif isinstance(update.message, Message):
            await update.message.answer(reply)
