"""The one place a failure becomes a reply: TaskbotError -> short text; anything else -> apology."""

from __future__ import annotations

import logging
import re

from aiogram import Router
from aiogram.types import ErrorEvent

from bot.rendering import esc, plain
from bot.texts import DEFAULT_LANGUAGE, LANGUAGES, pick_language, text
from core.errors import InputError, IntegrationError, TaskbotError

log = logging.getLogger("taskbot.bot")


#: Examples the core and the field parsers word in English, each with the text key of the
#: same example in the user's language (one the parser accepts in that language too).
_EXAMPLES = (
    (re.compile(r"Pay rent tomorrow 18:00"), "example.task"),
    (re.compile(r"tomorrow (?P<time>\d\d:\d\d)"), "example.tomorrow"),
    (re.compile(r"every month on the 1st"), "example.monthly"),
    (re.compile(r"9am"), "example.morning"),
    (re.compile(r"a title of at most (?P<limit>\d+) characters, e\.g\. .*"), "example.shorter"),
)


def localized_example(suggestion: str, lang: str) -> str:
    """The suggestion in `lang` when it is one of the known English examples, else as is."""
    for pattern, key in _EXAMPLES:
        match = pattern.fullmatch(suggestion)
        if match:
            return text(lang, key, **match.groupdict())
    return suggestion


def _reply_for(exc: BaseException, lang: str) -> str:
    if isinstance(exc, InputError):
        key = f"reasons.{exc.code}"
        reason = text(lang, key) if key in LANGUAGES[DEFAULT_LANGUAGE] else esc(str(exc))
        if exc.suggestion:
            example = localized_example(exc.suggestion, lang)
            return text(lang, "bad_input_hint", reason=reason, suggestion=esc(example))
        return text(lang, "bad_input", reason=reason)
    if isinstance(exc, IntegrationError):
        return text(lang, "unavailable")
    if isinstance(exc, TaskbotError):
        return text(lang, "bad_input", reason=esc(str(exc)))
    return text(lang, "error")


async def on_error(event: ErrorEvent, lang: str | None = None) -> bool:
    """Reply in the language the middleware chose (it honours /lang), else Telegram's."""
    exc = event.exception
    update = event.update
    user = None
    if update.message and update.message.from_user:
        user = update.message.from_user
    elif update.callback_query:
        user = update.callback_query.from_user
    lang = lang or pick_language(user.language_code if user else None)
    if isinstance(exc, TaskbotError):
        log.info(
            "update.refused", extra={"update_id": update.update_id, "kind": type(exc).__name__}
        )
    else:
        log.error("update.failed", extra={"update_id": update.update_id}, exc_info=exc)
    reply = _reply_for(exc, lang)
    if update.message:
        await update.message.answer(reply)
    elif update.callback_query:
        await update.callback_query.answer(plain(reply)[:200], show_alert=True)
    return True


def build_router() -> Router:
    """A fresh router per dispatcher: an aiogram router belongs to one parent only."""
    router = Router(name="errors")
    router.errors.register(on_error)
    return router
