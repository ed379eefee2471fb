"""Chat words for a task's fields: which field a user names, and what a typed value means.

Shared by `/edit`, `/deadline` and the wizards, so "none", "нет" and "tomorrow 18:00" mean the
same thing everywhere. Every refusal is an `InputError` with a code the texts explain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from zoneinfo import ZoneInfo

from core.errors import InputError
from core.quickadd import parse_quick_add


class Field(StrEnum):
    """What /edit can change."""

    TITLE = "title"
    DEADLINE = "deadline"
    PRIORITY = "priority"
    TAGS = "tags"
    DESCRIPTION = "description"
    ASSIGNEE = "assignee"


_FIELD_WORDS: dict[str, Field] = {
    **{f.value: f for f in Field},
    "name": Field.TITLE,
    "due": Field.DEADLINE,
    "when": Field.DEADLINE,
    "tag": Field.TAGS,
    "desc": Field.DESCRIPTION,
    "note": Field.DESCRIPTION,
    "who": Field.ASSIGNEE,
    "название": Field.TITLE,
    "срок": Field.DEADLINE,
    "дедлайн": Field.DEADLINE,
    "приоритет": Field.PRIORITY,
    "теги": Field.TAGS,
    "тег": Field.TAGS,
    "описание": Field.DESCRIPTION,
    "исполнитель": Field.ASSIGNEE,
    "кто": Field.ASSIGNEE,
}
NONE_WORDS = frozenset({"none", "no", "nothing", "-", "—", "нет", "без", "ничего"})
_PLACEHOLDER = "taskbot"  # stands in for a title so the quick-add parser reads a bare date
_USERNAME = re.compile(r"@?([A-Za-z0-9_]{3,32})")
_WHEN_EXAMPLE = "tomorrow 18:00"


@dataclass(frozen=True, slots=True)
class When:
    """A parsed deadline: None clears it; `recurrence` is set for "every monday 9:00"."""

    deadline: datetime | None
    recurrence: str | None = None


def field_named(word: str) -> Field | None:
    return _FIELD_WORDS.get(word.strip().lower())


def is_none(raw: str) -> bool:
    return raw.strip().lower() in NONE_WORDS


def parse_when(raw: str, *, now: datetime, tz: ZoneInfo) -> When:
    """A date phrase alone ("tomorrow 18:00", "через 3 дня", "none") as a UTC deadline."""
    if is_none(raw):
        return When(None)
    if not raw.strip():
        raise InputError("no date given", code="no_date", suggestion=_WHEN_EXAMPLE)
    parsed = parse_quick_add(f"{_PLACEHOLDER} {raw}", now=now, tz=tz)
    if parsed.deadline is None or parsed.title.lower() != _PLACEHOLDER:
        raise InputError(f"no date in {raw!r}", code="no_date", suggestion=_WHEN_EXAMPLE)
    recurrence = parsed.recurrence.to_text() if parsed.recurrence else None
    return When(parsed.deadline, recurrence)


def parse_priority(raw: str) -> int:
    value = raw.strip().lstrip("!")
    if not (value.isdigit() and 1 <= int(value) <= 5):
        raise InputError("priority is 1..5", code="bad_priority", suggestion="!1")
    return int(value)


def parse_tags(raw: str) -> tuple[str, ...]:
    """'#home work' -> ('home', 'work'); the orchestrator lowercases and bounds them."""
    if is_none(raw):
        return ()
    return tuple(word.lstrip("#") for word in raw.split() if word.lstrip("#"))


def parse_assignee(raw: str) -> str | None:
    if is_none(raw):
        return None
    m = _USERNAME.fullmatch(raw.strip())
    if m is None:
        raise InputError("not a username", code="bad_assignee", suggestion="@username")
    return m[1].lower()


def parse_extras(raw: str) -> tuple[tuple[str, ...], int | None]:
    """The wizard's last step: '#home !1' (or 'home 1') -> tags and priority."""
    tags: list[str] = []
    priority: int | None = None
    for word in raw.split():
        if word.startswith("!") or (word.isdigit() and len(word) == 1):
            priority = parse_priority(word)
        elif word.lstrip("#"):
            tags.append(word.lstrip("#"))
    return tuple(tags), priority


def edit_values(field: Field, raw: str, *, now: datetime, tz: ZoneInfo) -> dict[str, object]:
    """Keyword arguments for `update_task` that set `field` from what the user typed."""
    if field is Field.TITLE:
        return {"title": raw}
    if field is Field.DESCRIPTION:
        return {"description": "" if is_none(raw) else raw.strip()}
    if field is Field.DEADLINE:
        when = parse_when(raw, now=now, tz=tz)
        values: dict[str, object] = {"deadline": when.deadline}
        if when.recurrence is not None or when.deadline is None:
            values["recurrence"] = when.recurrence
        return values
    if field is Field.PRIORITY:
        return {"priority": parse_priority(raw)}
    if field is Field.TAGS:
        return {"tags": parse_tags(raw)}
    return {"assignee": parse_assignee(raw)}
