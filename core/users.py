"""Per-user settings (time zone, language) kept in the store's `users` table.

Contract: `UserSettings` borrows the open `SqliteTaskStore` and its one write connection; it
never opens its own. Each setter is one `INSERT ... ON CONFLICT DO UPDATE` of its own column,
so settings written by other features (reminder offsets, digest hour) on the same row are left
as they are. Values are validated here, before they are stored: a stored zone always loads.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from core.errors import InputError
from core.models import utcnow
from core.store import SqliteTaskStore

LANGUAGES = ("en", "ru")  # what the bot's texts exist in; /lang accepts nothing else
_MAX_ZONE_KEY = 64  # IANA keys are far shorter; bounds what a user can make us look up
_TZ_EXAMPLE = "Europe/Moscow"


@dataclass(frozen=True, slots=True)
class UserPrefs:
    """What one user chose; None means 'not chosen, use the default'."""

    user_id: int
    tz: str | None = None
    lang: str | None = None


def load_zone(key: str) -> ZoneInfo:
    """The IANA zone `key` ('Europe/Moscow', 'UTC', any letter case), or InputError `bad_tz`."""
    key = key.strip()
    if not key or len(key) > _MAX_ZONE_KEY or key.startswith(("/", ".")) or ".." in key:
        raise _bad_zone(key)
    try:
        return ZoneInfo(key)
    except (ZoneInfoNotFoundError, ValueError, IsADirectoryError) as exc:
        exact = _zone_keys().get(key.lower())  # 'europe/moscow' means Europe/Moscow
        if exact is None:
            raise _bad_zone(key) from exc
        return ZoneInfo(exact)


def _bad_zone(key: str) -> InputError:
    return InputError(f"unknown time zone {key!r}", code="bad_tz", suggestion=_TZ_EXAMPLE)


@cache
def _zone_keys() -> dict[str, str]:
    """Lowercased IANA key -> key; built once, on the first miss (a walk over tzdata, ~10 ms)."""
    return {key.lower(): key for key in available_timezones()}


class UserSettings:
    """Read and change one user's settings; a user with no row gets an empty `UserPrefs`."""

    def __init__(self, store: SqliteTaskStore) -> None:
        self.store = store

    async def get(self, user_id: int) -> UserPrefs:
        async with self.store.db.execute(
            "SELECT tz, lang FROM users WHERE user_id=?", (user_id,)
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            return UserPrefs(user_id)
        return UserPrefs(user_id, tz=_text(row[0]), lang=_text(row[1]))

    async def set_tz(self, user_id: int, key: str) -> ZoneInfo:
        """Validate and store the user's zone; returns the loaded zone."""
        zone = load_zone(key)
        await self._put(user_id, "tz", zone.key)
        return zone

    async def set_lang(self, user_id: int, lang: str) -> str:
        lang = lang.strip().lower()
        if lang not in LANGUAGES:
            raise InputError(f"unknown language {lang!r}", code="bad_lang", suggestion="en")
        await self._put(user_id, "lang", lang)
        return lang

    async def _put(self, user_id: int, column: str, value: str) -> None:
        # `column` comes from the two setters above, never from user input.
        sql = (
            f"INSERT INTO users (user_id, {column}, updated_at) VALUES (?, ?, ?) "
            f"ON CONFLICT (user_id) DO UPDATE SET {column}=excluded.{column}, "
            "updated_at=excluded.updated_at"
        )
        # One statement in autocommit mode is atomic on its own; the store's write lock keeps
        # it from landing inside another coroutine's open transaction on the shared connection.
        await self.store.write(sql, (user_id, value, utcnow().isoformat()))


def _text(value: object) -> str | None:
    return None if value is None else str(value)
