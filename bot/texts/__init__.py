"""Every user-facing sentence, per language; handlers ask for keys, never write prose."""

from __future__ import annotations

from bot.texts import en, ru

LANGUAGES: dict[str, dict[str, str]] = {"en": en.TEXTS, "ru": ru.TEXTS}
DEFAULT_LANGUAGE = "en"

# The command menu Telegram shows, in this order; each name has a `cmd.<name>` text.
MENU_COMMANDS = (
    "new",
    "list",
    "task",
    "done",
    "edit",
    "deadline",
    "delete",
    "search",
    "split",
    "related",
    "history",
    "files",
    "note",
    "track",
    "stop",
    "report",
    "calendar",
    "notify",
    "export",
    "remind",
    "tz",
    "lang",
    "cancel",
    "help",
    "start",
)


def pick_language(code: str | None) -> str:
    """Map a Telegram `language_code` ('ru', 'ru-RU', 'en-GB', None) to one we speak."""
    base = (code or "").split("-")[0].lower()
    return base if base in LANGUAGES else DEFAULT_LANGUAGE


def text(lang: str, key: str, **values: object) -> str:
    """The sentence `key` in `lang` (English when missing), formatted with `values`."""
    template = LANGUAGES.get(lang, en.TEXTS).get(key) or en.TEXTS[key]
    return template.format(**values) if values else template


def command_menu(lang: str) -> list[tuple[str, str]]:
    """(command, description) pairs for setMyCommands in `lang`."""
    return [(name, text(lang, f"cmd.{name}")) for name in MENU_COMMANDS]
