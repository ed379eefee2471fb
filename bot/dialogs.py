"""Dialog (FSM) state in the bot's own SQLite store, so a restart resumes a wizard half-way.

aiogram's `MemoryStorage` forgets every dialog when the process ends: a user in the middle
of /new would find the bot treating their next message as a fresh command. This storage
keeps state and data per dialog key in `taskbot.db` (table `dialogs`), one row per dialog
in progress; a finished dialog deletes its row. Data must be JSON (the wizard keeps ids,
text and ISO dates).

LIMIT: one store per process; replicas behind one token would each keep their own dialogs.
aiogram's RedisStorage is the scale-out path (DESIGN.md).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage, StateType, StorageKey

from core.locks import KeyedLocks
from core.models import utcnow
from core.store import SqliteTaskStore

#: A dialog untouched this long is dropped at start: its prompt is long out of view.
ABANDONED_AFTER = timedelta(days=2)


class SqliteDialogStorage(BaseStorage):
    """aiogram storage on `SqliteTaskStore`; the store's owner opens and closes it."""

    def __init__(self, store: SqliteTaskStore) -> None:
        self.store = store

    async def forget_abandoned(self) -> int:
        return await self.store.forget_dialogs(older_than=utcnow() - ABANDONED_AFTER)

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        await self.store.set_dialog(_key(key), state=value)

    async def get_state(self, key: StorageKey) -> str | None:
        state, _ = await self.store.dialog(_key(key))
        return state

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        await self.store.set_dialog(_key(key), data=dict(data))

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        _, data = await self.store.dialog(_key(key))
        return data

    async def close(self) -> None:
        """Nothing to do: the store belongs to the orchestrator, which closes it."""


class DialogIsolation(BaseEventIsolation):
    """One update at a time per dialog (chat and user), in the order Telegram sent them.

    aiogram handles updates concurrently: a quick "/new Buy milk" then "/list" could list
    before the task is saved, and two wizard answers could both read the first step's
    state. The dispatcher takes this lock before it reads the dialog state. Unlike aiogram's
    SimpleEventIsolation, a lock lives only while a dialog has an update in flight.
    """

    def __init__(self) -> None:
        self._locks = KeyedLocks()

    @asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncIterator[None]:
        async with self._locks.hold(_key(key)):
            yield

    async def close(self) -> None:
        """Nothing held between updates."""


def _key(key: StorageKey) -> str:
    parts = (
        key.bot_id,
        key.chat_id,
        key.user_id,
        key.thread_id or "",
        key.business_connection_id or "",
        key.destiny,
    )
    return ":".join(str(part) for part in parts)
