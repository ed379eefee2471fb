"""SQLite store: the local source of truth for tasks, their outbox and remote links.

Contract: one `SqliteTaskStore` owns one aiosqlite connection, opened by `open()` (or
`async with`) and closed by `close()`. Every write that must be atomic with its outbox
rows runs in one transaction on that connection; aiosqlite serialises the statements on
its own thread, so there is exactly one writer and no `database is locked` between our
own calls. Deadlines and timestamps are stored as UTC ISO text plus an integer epoch
column where an index needs to range-scan.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import Any

import aiosqlite

from core.errors import StorageError, TaskNotFound
from core.models import (
    Operation,
    OutboxRow,
    OutboxState,
    Task,
    TaskDraft,
    TaskStatus,
    utcnow,
)

# Each entry runs once, in order, inside one transaction; never edit a shipped step,
# append a new one (an edited step would leave old databases on a different schema).
MIGRATIONS: tuple[str, ...] = (
    """
    CREATE TABLE tasks (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        uid TEXT NOT NULL UNIQUE,
        title TEXT NOT NULL,
        description TEXT NOT NULL DEFAULT '',
        priority INTEGER NOT NULL,
        deadline TEXT,
        deadline_ts INTEGER,
        tags TEXT NOT NULL DEFAULT '[]',
        status TEXT NOT NULL,
        chat_id INTEGER NOT NULL,
        author_id INTEGER,
        assignee TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL,
        version INTEGER NOT NULL DEFAULT 1
    );
    CREATE INDEX tasks_by_chat ON tasks (chat_id, status, deadline_ts);
    CREATE INDEX tasks_by_deadline ON tasks (status, deadline_ts);
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        task_uid TEXT NOT NULL,
        server TEXT NOT NULL,
        op TEXT NOT NULL,
        seq INTEGER NOT NULL,
        state TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX outbox_pending ON outbox (state, server, task_uid, seq);
    CREATE INDEX outbox_by_task ON outbox (task_uid, seq);
    CREATE TABLE links (
        task_uid TEXT NOT NULL,
        server TEXT NOT NULL,
        external_id TEXT NOT NULL,
        PRIMARY KEY (task_uid, server)
    );
    """,
    # 2: recurring tasks; per-user settings; chats the bot may no longer write to.
    """
    ALTER TABLE tasks ADD COLUMN recurrence TEXT;
    CREATE TABLE users (
        user_id INTEGER PRIMARY KEY,
        tz TEXT,
        lang TEXT,
        remind_offsets TEXT,
        digest_hour INTEGER,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE chats (
        chat_id INTEGER PRIMARY KEY,
        active INTEGER NOT NULL DEFAULT 1,
        kind TEXT,
        updated_at TEXT NOT NULL
    );
    """,
    # 3: reminders (core/reminders.py). The tick range-scans reminders_due and nothing else;
    # reminders_identity makes scheduling idempotent and serves the per-task and per-chat
    # lookups. Open tasks that already have a deadline get the default reminders (1 h
    # before and at the deadline) so an upgrade does not silence them.
    """
    CREATE TABLE reminders (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        task_uid TEXT NOT NULL,
        chat_id INTEGER NOT NULL,
        kind TEXT NOT NULL,
        fire_at_ts INTEGER NOT NULL,
        state TEXT NOT NULL,
        claim TEXT,
        late INTEGER NOT NULL DEFAULT 0,
        sent_at TEXT,
        created_at TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE INDEX reminders_due ON reminders (state, fire_at_ts);
    CREATE UNIQUE INDEX reminders_identity ON reminders (task_uid, chat_id, kind, fire_at_ts);
    INSERT OR IGNORE INTO reminders
        (task_uid, chat_id, kind, fire_at_ts, state, created_at, updated_at)
    SELECT uid, chat_id, 'deadline', deadline_ts - 3600, 'pending', updated_at, updated_at
    FROM tasks
    WHERE status = 'open' AND chat_id != 0
        AND deadline_ts - 3600 > CAST(strftime('%s', 'now') AS INTEGER);
    INSERT OR IGNORE INTO reminders
        (task_uid, chat_id, kind, fire_at_ts, state, created_at, updated_at)
    SELECT uid, chat_id, 'deadline', deadline_ts, 'pending', updated_at, updated_at
    FROM tasks
    WHERE status = 'open' AND chat_id != 0
        AND deadline_ts > CAST(strftime('%s', 'now') AS INTEGER);
    """,
    # 4: two-way sync: where reading each server's own changes goes on from (an opaque
    # cursor the integration hands out, e.g. DeltaTask's last revision seen), and both
    # versions of every conflict, kept here rather than in the logs, which carry no task text.
    """
    CREATE TABLE sync_cursors (
        server TEXT PRIMARY KEY,
        cursor TEXT NOT NULL,
        updated_at TEXT NOT NULL
    );
    CREATE TABLE sync_conflicts (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        task_uid TEXT NOT NULL,
        server TEXT NOT NULL,
        winner TEXT NOT NULL,
        local TEXT NOT NULL,
        remote TEXT NOT NULL,
        created_at TEXT NOT NULL
    );
    CREATE INDEX sync_conflicts_by_task ON sync_conflicts (task_uid, id);
    """,
    # 5: chat dialogs in progress (the /new wizard, an edit): state and data per dialog key,
    # so a restart in the middle of one resumes it; a finished dialog leaves no row.
    """
    CREATE TABLE dialogs (
        key TEXT PRIMARY KEY,
        state TEXT,
        data TEXT NOT NULL DEFAULT '{}',
        updated_at TEXT NOT NULL
    );
    """,
)

_TASK_COLUMNS = (
    "id, uid, title, description, priority, deadline, tags, status, chat_id, "
    "author_id, assignee, created_at, updated_at, version, recurrence"
)


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value else None


def _epoch(value: datetime | None) -> int | None:
    return int(value.timestamp()) if value else None


def _dt(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def _task(row: Sequence[object]) -> Task:
    created = _dt(row[11])  # type: ignore[arg-type]
    updated = _dt(row[12])  # type: ignore[arg-type]
    assert created is not None and updated is not None
    return Task(
        id=int(row[0]),  # type: ignore[call-overload]
        uid=str(row[1]),
        title=str(row[2]),
        description=str(row[3]),
        priority=int(row[4]),  # type: ignore[call-overload]
        deadline=_dt(row[5]),  # type: ignore[arg-type]
        tags=tuple(json.loads(str(row[6]))),
        status=TaskStatus(str(row[7])),
        chat_id=int(row[8]),  # type: ignore[call-overload]
        author_id=None if row[9] is None else int(row[9]),  # type: ignore[call-overload]
        assignee=None if row[10] is None else str(row[10]),
        created_at=created,
        updated_at=updated,
        version=int(row[13]),  # type: ignore[call-overload]
        recurrence=None if row[14] is None else str(row[14]),
    )


async def _version(db: aiosqlite.Connection, uid: str) -> int | None:
    """The task's current version (its outbox rows' `seq`), or None for an unknown uid."""
    async with db.execute("SELECT version FROM tasks WHERE uid=?", (uid,)) as cur:
        row = await cur.fetchone()
    return None if row is None else int(row[0])


async def _to_the_end(statement: Awaitable[object]) -> None:
    """Await a statement; if cancelled meanwhile, wait for it to finish, then re-raise."""
    job = asyncio.ensure_future(statement)
    try:
        await asyncio.shield(job)
    except asyncio.CancelledError:
        with contextlib.suppress(aiosqlite.Error):
            await job
        raise


class _Keep:
    """Marks an argument left out (None is a value: 'no state')."""


KEEP = _Keep()


def _drafted(task_id: int, uid: str, draft: TaskDraft, now: datetime) -> Task:
    """The task a draft became once inserted as row `task_id`."""
    return Task(
        id=task_id,
        uid=uid,
        title=draft.title,
        description=draft.description,
        priority=draft.priority,
        deadline=draft.deadline.astimezone(UTC) if draft.deadline else None,
        tags=draft.tags,
        status=TaskStatus.OPEN,
        chat_id=draft.chat_id,
        author_id=draft.author_id,
        assignee=draft.assignee,
        created_at=now,
        updated_at=now,
        recurrence=draft.recurrence,
    )


def _outbox(row: Sequence[object]) -> OutboxRow:
    created = _dt(row[8])  # type: ignore[arg-type]
    assert created is not None
    return OutboxRow(
        id=int(row[0]),  # type: ignore[call-overload]
        task_uid=str(row[1]),
        server=str(row[2]),
        op=Operation(str(row[3])),
        seq=int(row[4]),  # type: ignore[call-overload]
        state=OutboxState(str(row[5])),
        attempts=int(row[6]),  # type: ignore[call-overload]
        last_error=None if row[7] is None else str(row[7]),
        created_at=created,
    )


_OUTBOX_COLUMNS = "id, task_uid, server, op, seq, state, attempts, last_error, created_at"


class SqliteTaskStore:
    """Tasks, outbox and links in one SQLite file (WAL)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._db: aiosqlite.Connection | None = None
        # All writes share one connection, so two coroutines must never interleave inside
        # one transaction: B's statements would commit or roll back with A's.
        self._write_lock = asyncio.Lock()

    async def __aenter__(self) -> SqliteTaskStore:
        await self.open()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def db(self) -> aiosqlite.Connection:
        if self._db is None:
            raise StorageError("store is not open")
        return self._db

    async def open(self) -> None:
        """Open the file, switch to WAL and apply pending migrations."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = await aiosqlite.connect(self.path, isolation_level=None)
            # WAL lets readers run beside the writer; NORMAL sync keeps every committed
            # transaction across a process crash (only an OS crash can lose the last ones).
            await self._db.execute("PRAGMA journal_mode=WAL")
            await self._db.execute("PRAGMA synchronous=NORMAL")
            await self._db.execute("PRAGMA busy_timeout=5000")
            await self._migrate()
        except (aiosqlite.Error, OSError) as exc:
            raise StorageError(f"cannot open store {self.path}: {exc}") from exc

    async def close(self) -> None:
        if self._db is not None:
            db, self._db = self._db, None
            await db.close()

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """One IMMEDIATE transaction under the write lock, for modules that own extra tables.

        Cancellation-safe: a statement handed to aiosqlite's thread runs whether or not its
        caller is cancelled, so BEGIN, COMMIT and ROLLBACK are always awaited to the end.
        A BEGIN left open by a cancelled caller would fail every later transaction.
        """
        async with self._write_lock:
            db = self.db
            try:
                await _to_the_end(db.execute("BEGIN IMMEDIATE"))
            except asyncio.CancelledError:
                with contextlib.suppress(aiosqlite.Error):  # the BEGIN ran (unless it failed)
                    await _to_the_end(db.execute("ROLLBACK"))
                raise
            try:
                yield db
            except BaseException:
                await _to_the_end(db.execute("ROLLBACK"))
                raise
            await _to_the_end(db.execute("COMMIT"))

    async def write(self, sql: str, params: Sequence[object]) -> None:
        """One autocommitted statement that never lands inside another coroutine's transaction."""
        async with self._write_lock:
            await self.db.execute(sql, params)

    async def _migrate(self) -> None:
        db = self.db
        await db.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
        async with db.execute("SELECT MAX(version) FROM schema_version") as cur:
            row = await cur.fetchone()
        current = int(row[0]) if row and row[0] is not None else 0
        for number, script in enumerate(MIGRATIONS[current:], start=current + 1):
            await db.execute("BEGIN IMMEDIATE")
            try:
                for statement in filter(str.strip, script.split(";")):
                    await db.execute(statement)
                await db.execute("INSERT INTO schema_version (version) VALUES (?)", (number,))
            except BaseException:
                await db.execute("ROLLBACK")
                raise
            await db.execute("COMMIT")

    async def schema_version(self) -> int:
        async with self.db.execute("SELECT MAX(version) FROM schema_version") as cur:
            row = await cur.fetchone()
        return int(row[0]) if row and row[0] is not None else 0

    # -- tasks ----------------------------------------------------------------------------

    async def create_task(
        self,
        draft: TaskDraft,
        *,
        uid: str,
        servers: Iterable[str],
        now: datetime | None = None,
    ) -> Task:
        """Insert the task and one pending CREATE outbox row per server, atomically."""
        now = now or utcnow()
        try:
            async with self.transaction() as db:
                task_id = await self._insert(db, draft, uid, servers, now)
        except aiosqlite.Error as exc:
            raise StorageError(f"cannot save task: {exc}") from exc
        return _drafted(task_id, uid, draft, now)

    async def _insert(
        self,
        db: aiosqlite.Connection,
        draft: TaskDraft,
        uid: str,
        servers: Iterable[str],
        now: datetime,
    ) -> int:
        stamp = _iso(now)
        cur = await db.execute(
            "INSERT INTO tasks (uid, title, description, priority, deadline, "
            "deadline_ts, tags, status, chat_id, author_id, assignee, created_at, "
            "updated_at, version, recurrence) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,1,?)",
            (
                uid,
                draft.title,
                draft.description,
                draft.priority,
                _iso(draft.deadline),
                _epoch(draft.deadline),
                json.dumps(list(draft.tags), ensure_ascii=False),
                TaskStatus.OPEN.value,
                draft.chat_id,
                draft.author_id,
                draft.assignee,
                stamp,
                stamp,
                draft.recurrence,
            ),
        )
        assert cur.lastrowid is not None
        await self._add_outbox(uid, servers, Operation.CREATE, 1, stamp)
        return cur.lastrowid

    async def _add_outbox(
        self,
        uid: str,
        servers: Iterable[str],
        op: Operation,
        seq: int,
        stamp: str | None,
    ) -> None:
        await self.db.executemany(
            "INSERT INTO outbox (task_uid, server, op, seq, state, created_at, updated_at) "
            "VALUES (?,?,?,?,?,?,?)",
            [(uid, s, op.value, seq, OutboxState.PENDING.value, stamp, stamp) for s in servers],
        )

    async def change_task(
        self,
        task: Task,
        op: Operation,
        *,
        servers: Iterable[str],
        now: datetime | None = None,
        **fields: Any,
    ) -> Task:
        """Apply field changes (or a status change) and queue `op` for each server."""
        now = now or utcnow()
        changed = task.evolve(**fields, updated_at=now, version=task.version + 1)
        try:
            async with self.transaction() as db:
                await self._update(db, task, changed, op, servers)
        except aiosqlite.Error as exc:
            raise StorageError(f"cannot update task {task.id}: {exc}") from exc
        return changed

    async def complete_recurring(
        self,
        task: Task,
        successor: TaskDraft,
        *,
        successor_uid: str,
        servers: Iterable[str],
        successor_servers: Iterable[str],
        now: datetime | None = None,
        **fields: Any,
    ) -> tuple[Task, Task]:
        """Mark the task done (with any other `fields`) and insert its next occurrence.

        One transaction: a crash leaves both or neither, never a finished task whose next
        occurrence is lost.
        """
        now = now or utcnow()
        done = task.evolve(
            **fields, status=TaskStatus.DONE, updated_at=now, version=task.version + 1
        )
        try:
            async with self.transaction() as db:
                await self._update(db, task, done, Operation.COMPLETE, servers)
                task_id = await self._insert(db, successor, successor_uid, successor_servers, now)
        except aiosqlite.Error as exc:
            raise StorageError(f"cannot complete task {task.id}: {exc}") from exc
        return done, _drafted(task_id, successor_uid, successor, now)

    async def _update(
        self,
        db: aiosqlite.Connection,
        task: Task,
        changed: Task,
        op: Operation,
        servers: Iterable[str],
    ) -> None:
        """Write `changed` over `task` if nobody changed it meanwhile, and queue `op`."""
        stamp = _iso(changed.updated_at)
        cur = await db.execute(
            "UPDATE tasks SET title=?, description=?, priority=?, deadline=?, "
            "deadline_ts=?, tags=?, status=?, assignee=?, updated_at=?, version=?, "
            "recurrence=? WHERE uid=? AND version=?",
            (
                changed.title,
                changed.description,
                changed.priority,
                _iso(changed.deadline),
                _epoch(changed.deadline),
                json.dumps(list(changed.tags), ensure_ascii=False),
                changed.status.value,
                changed.assignee,
                stamp,
                changed.version,
                changed.recurrence,
                task.uid,
                task.version,
            ),
        )
        if cur.rowcount != 1:
            raise StorageError(f"task {task.id} changed meanwhile; try again")
        await self._add_outbox(task.uid, servers, op, changed.version, stamp)

    async def set_status(self, uid: str, status: TaskStatus) -> None:
        """Status change that sends nothing anywhere (compensation's final word)."""
        await self.write(
            "UPDATE tasks SET status=?, updated_at=? WHERE uid=?",
            (status.value, _iso(utcnow()), uid),
        )

    async def get_task(self, task_id: int) -> Task:
        async with self.db.execute(
            f"SELECT {_TASK_COLUMNS} FROM tasks WHERE id=?", (task_id,)
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            raise TaskNotFound(task_id)
        return _task(row)

    async def get_by_uid(self, uid: str) -> Task:
        async with self.db.execute(f"SELECT {_TASK_COLUMNS} FROM tasks WHERE uid=?", (uid,)) as cur:
            row = await cur.fetchone()
        if row is None:
            raise TaskNotFound(uid)
        return _task(row)

    async def list_tasks(
        self,
        chat_id: int,
        *,
        statuses: Sequence[TaskStatus] = (TaskStatus.OPEN,),
        limit: int = 50,
        offset: int = 0,
    ) -> list[Task]:
        """Tasks of one chat, soonest deadline first, undated last, then by id."""
        marks = ",".join("?" for _ in statuses)
        sql = (
            f"SELECT {_TASK_COLUMNS} FROM tasks WHERE chat_id=? AND status IN ({marks}) "
            "ORDER BY deadline_ts IS NULL, deadline_ts, id LIMIT ? OFFSET ?"
        )
        params = (chat_id, *(s.value for s in statuses), limit, offset)
        async with self.db.execute(sql, params) as cur:
            rows = await cur.fetchall()
        return [_task(r) for r in rows]

    async def count_tasks(self, *, status: TaskStatus | None = None) -> int:
        sql, params = "SELECT COUNT(*) FROM tasks", ()
        if status is not None:
            sql, params = sql + " WHERE status=?", (status.value,)  # type: ignore[assignment]
        async with self.db.execute(sql, params) as cur:
            row = await cur.fetchone()
        return int(row[0]) if row else 0

    # -- outbox ---------------------------------------------------------------------------

    async def pending_for_task(self, uid: str) -> list[OutboxRow]:
        async with self.db.execute(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE task_uid=? AND state=? ORDER BY seq, id",
            (uid, OutboxState.PENDING.value),
        ) as cur:
            rows = await cur.fetchall()
        return [_outbox(r) for r in rows]

    async def pending_task_uids(
        self, *, server: str | None = None, after: int = 0, limit: int = 1000
    ) -> list[tuple[str, int]]:
        """Tasks with work left, oldest first, as (uid, cursor); pass `after=cursor` to page."""
        sql = "SELECT task_uid, MIN(id) AS first FROM outbox WHERE state=?"
        params: tuple[object, ...] = (OutboxState.PENDING.value,)
        if server is not None:
            sql += " AND server=?"
            params += (server,)
        sql += " GROUP BY task_uid HAVING first > ? ORDER BY first LIMIT ?"
        async with self.db.execute(sql, (*params, after, limit)) as cur:
            rows = await cur.fetchall()
        return [(str(r[0]), int(r[1])) for r in rows]

    async def finish_outbox(
        self,
        row_id: int,
        state: OutboxState,
        *,
        error: str | None = None,
        external: tuple[str, str, str] | None = None,
    ) -> None:
        """Record one row's outcome, and the remote id it produced, atomically."""
        async with self.transaction() as db:
            await db.execute(
                "UPDATE outbox SET state=?, attempts=attempts+1, last_error=?, updated_at=? "
                "WHERE id=?",
                (state.value, error, _iso(utcnow()), row_id),
            )
            if external is not None:
                await db.execute(
                    "INSERT INTO links (task_uid, server, external_id) VALUES (?,?,?) "
                    "ON CONFLICT (task_uid, server) DO UPDATE SET external_id=excluded.external_id",
                    external,
                )

    async def note_attempt(self, row_id: int, error: str) -> None:
        """A failed attempt that leaves the row pending."""
        await self.write(
            "UPDATE outbox SET attempts=attempts+1, last_error=?, updated_at=? WHERE id=?",
            (error, _iso(utcnow()), row_id),
        )

    async def compensate(self, uid: str, holders: Sequence[str]) -> None:
        """Mark the task FAILED, cancel its pending rows, queue UNDO for `holders`."""
        stamp = _iso(utcnow())
        async with self.transaction() as db:
            await db.execute(
                "UPDATE tasks SET status=?, updated_at=?, version=version+1 WHERE uid=?",
                (TaskStatus.FAILED.value, stamp, uid),
            )
            await db.execute(
                "UPDATE outbox SET state=?, updated_at=? WHERE task_uid=? AND state=?",
                (OutboxState.CANCELLED.value, stamp, uid, OutboxState.PENDING.value),
            )
            seq = await _version(db, uid) or 1
            await self._add_outbox(uid, holders, Operation.UNDO, seq, stamp)

    async def enqueue(self, uid: str, server: str, op: Operation) -> None:
        """Queue `op` for one server at the task's current version (a repair, not a change)."""
        stamp = _iso(utcnow())
        async with self.transaction() as db:
            seq = await _version(db, uid)
            if seq is None:
                raise TaskNotFound(uid)
            await self._add_outbox(uid, (server,), op, seq, stamp)

    async def cancel_pending(self, uid: str) -> None:
        await self.write(
            "UPDATE outbox SET state=?, updated_at=? WHERE task_uid=? AND state=?",
            (OutboxState.CANCELLED.value, _iso(utcnow()), uid, OutboxState.PENDING.value),
        )

    async def outbox_depth(self) -> dict[str, int]:
        async with self.db.execute(
            "SELECT server, COUNT(*) FROM outbox WHERE state=? GROUP BY server",
            (OutboxState.PENDING.value,),
        ) as cur:
            rows = await cur.fetchall()
        return {str(r[0]): int(r[1]) for r in rows}

    async def outbox_for_task(self, uid: str) -> list[OutboxRow]:
        async with self.db.execute(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE task_uid=? ORDER BY seq, id", (uid,)
        ) as cur:
            rows = await cur.fetchall()
        return [_outbox(r) for r in rows]

    # -- links ----------------------------------------------------------------------------

    async def links(self, uid: str) -> dict[str, str]:
        async with self.db.execute(
            "SELECT server, external_id FROM links WHERE task_uid=?", (uid,)
        ) as cur:
            rows = await cur.fetchall()
        return {str(r[0]): str(r[1]) for r in rows}

    async def drop_link(self, uid: str, server: str) -> None:
        await self.write("DELETE FROM links WHERE task_uid=? AND server=?", (uid, server))

    # -- two-way sync ---------------------------------------------------------------------

    async def sync_cursor(self, server: str) -> str | None:
        """Where reading `server`'s own changes resumes; None before the first read."""
        async with self.db.execute(
            "SELECT cursor FROM sync_cursors WHERE server=?", (server,)
        ) as cur:
            row = await cur.fetchone()
        return str(row[0]) if row else None

    async def set_sync_cursor(self, server: str, cursor: str) -> None:
        await self.write(
            "INSERT INTO sync_cursors (server, cursor, updated_at) VALUES (?,?,?) "
            "ON CONFLICT (server) DO UPDATE SET cursor=excluded.cursor, "
            "updated_at=excluded.updated_at",
            (server, cursor, _iso(utcnow())),
        )

    async def record_conflict(
        self,
        uid: str,
        server: str,
        *,
        winner: str,
        local: Mapping[str, object],
        remote: Mapping[str, object],
    ) -> None:
        """Keep both sides of a conflict the sync resolved, so the loser can be recovered."""
        await self.write(
            "INSERT INTO sync_conflicts (task_uid, server, winner, local, remote, created_at) "
            "VALUES (?,?,?,?,?,?)",
            (
                uid,
                server,
                winner,
                json.dumps(local, ensure_ascii=False, default=str),
                json.dumps(remote, ensure_ascii=False, default=str),
                _iso(utcnow()),
            ),
        )

    async def conflicts(self, uid: str) -> list[dict[str, Any]]:
        """Every recorded conflict of one task, oldest first."""
        async with self.db.execute(
            "SELECT server, winner, local, remote, created_at FROM sync_conflicts "
            "WHERE task_uid=? ORDER BY id",
            (uid,),
        ) as cur:
            rows = await cur.fetchall()
        return [
            {
                "server": r[0],
                "winner": r[1],
                "local": json.loads(r[2]),
                "remote": json.loads(r[3]),
                "at": r[4],
            }
            for r in rows
        ]

    # -- dialogs --------------------------------------------------------------------------

    async def dialog(self, key: str) -> tuple[str | None, dict[str, Any]]:
        """State and data of a dialog in progress; (None, {}) when there is none."""
        async with self.db.execute("SELECT state, data FROM dialogs WHERE key=?", (key,)) as cur:
            row = await cur.fetchone()
        if row is None:
            return None, {}
        data = json.loads(row[1])
        return (None if row[0] is None else str(row[0])), data

    async def set_dialog(
        self,
        key: str,
        *,
        state: str | _Keep | None = KEEP,
        data: Mapping[str, Any] | _Keep = KEEP,
    ) -> None:
        """Change a dialog's state and/or data; a dialog with neither left is removed."""
        async with self.transaction() as db:
            async with db.execute("SELECT state, data FROM dialogs WHERE key=?", (key,)) as cur:
                row = await cur.fetchone()
            old_state, old_data = (row[0], row[1]) if row else (None, "{}")
            new_state = old_state if isinstance(state, _Keep) else state
            new_data = old_data if isinstance(data, _Keep) else json.dumps(data, ensure_ascii=False)
            if new_state is None and new_data == "{}":
                await db.execute("DELETE FROM dialogs WHERE key=?", (key,))
                return
            await db.execute(
                "INSERT INTO dialogs (key, state, data, updated_at) VALUES (?,?,?,?) "
                "ON CONFLICT (key) DO UPDATE SET state=excluded.state, data=excluded.data, "
                "updated_at=excluded.updated_at",
                (key, new_state, new_data, _iso(utcnow())),
            )

    async def forget_dialogs(self, *, older_than: datetime) -> int:
        """Drop dialogs nobody touched since `older_than` (abandoned half-way)."""
        async with self.transaction() as db:
            cur = await db.execute("DELETE FROM dialogs WHERE updated_at < ?", (_iso(older_than),))
            return cur.rowcount
