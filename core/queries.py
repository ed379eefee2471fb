"""Read-only views over one chat's tasks: list filters with pages, tags, word search, export.

Contract: `TaskQueries` borrows an open `SqliteTaskStore` and only reads. A filter is built
from plain values (`view_filter` turns "today" into a UTC window for the reader's zone), so
the chat layer never writes SQL and the same filter can be tested without Telegram. Tasks are
loaded through `store.get_task`, one per row of a page; a page is small by design.

LIMIT: /search is a substring scan of the chat's tasks through a Python case-folding function,
fine for thousands of tasks per chat but linear in them, and blind to meaning. An FTS5 index
would make it fast; the hpkv-memory integration is meant to add search by meaning.
LIMIT: an export holds at most 10,000 tasks in one file; paging the export into several
files would lift it.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from core.models import Task, TaskStatus
from core.store import SqliteTaskStore

EXPORT_COLUMNS = (
    "id",
    "title",
    "status",
    "priority",
    "deadline_utc",
    "deadline_local",
    "tags",
    "assignee",
    "description",
    "created_at",
)
PAGE_SIZE = 10  # tasks per list message: one screen, and one row of ten card buttons at most
MAX_SEARCH_WORDS = 8  # bounds the SQL a single /search builds
_FOLD = "taskbot_fold"  # SQLite's lower() folds ASCII only; this one folds Cyrillic too


class View(StrEnum):
    """The lists a user can ask for."""

    OPEN = "open"
    TODAY = "today"
    OVERDUE = "overdue"
    ALL = "all"  # open and done
    TAG = "tag"


@dataclass(frozen=True, slots=True)
class TaskFilter:
    """Which of a chat's tasks to show; every condition given must hold."""

    statuses: tuple[TaskStatus, ...] = (TaskStatus.OPEN,)
    due_from: datetime | None = None  # inclusive
    due_before: datetime | None = None  # exclusive
    tag: str | None = None
    words: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class TaskPage:
    """One page of a filtered list; `page` is clamped into 0..pages-1."""

    tasks: list[Task]
    total: int
    page: int
    pages: int


def view_filter(view: View, *, now: datetime, tz: ZoneInfo, tag: str | None = None) -> TaskFilter:
    """The filter behind a view; 'today' is the reader's local calendar day."""
    if view is View.TODAY:
        day = now.astimezone(tz).date()
        start = datetime.combine(day, time(), tzinfo=tz)
        end = datetime.combine(day + timedelta(days=1), time(), tzinfo=tz)
        return TaskFilter(due_from=start, due_before=end)
    if view is View.OVERDUE:
        return TaskFilter(due_before=now)
    if view is View.ALL:
        return TaskFilter(statuses=(TaskStatus.OPEN, TaskStatus.DONE))
    if view is View.TAG:
        return TaskFilter(tag=(tag or "").lower())
    return TaskFilter()


def tag_key(tag: str) -> str:
    """A short stable name for a tag, so a button can point at a tag of any length."""
    return hashlib.sha256(tag.encode()).hexdigest()[:10]


def fold(value: str | None) -> str:
    """Case-insensitive form of a text, for every alphabet Python knows."""
    return (value or "").casefold()


class TaskQueries:
    """Filtered, paged reads of one chat's tasks."""

    def __init__(self, store: SqliteTaskStore) -> None:
        self.store = store

    async def page(
        self,
        chat_id: int,
        flt: TaskFilter,
        *,
        page: int = 0,
        size: int = PAGE_SIZE,
    ) -> TaskPage:
        """One page, soonest deadline first, undated last, then by id."""
        where, params = await self._where(chat_id, flt)
        async with self.store.db.execute(f"SELECT COUNT(*) FROM tasks WHERE {where}", params) as c:
            row = await c.fetchone()
        total = int(row[0]) if row else 0
        pages = max(1, -(-total // size))
        page = min(max(page, 0), pages - 1)
        sql = (
            f"SELECT id FROM tasks WHERE {where} "
            "ORDER BY status != 'open', deadline_ts IS NULL, deadline_ts, id LIMIT ? OFFSET ?"
        )
        async with self.store.db.execute(sql, (*params, size, page * size)) as cur:
            ids = [int(r[0]) for r in await cur.fetchall()]
        tasks = [await self.store.get_task(task_id) for task_id in ids]
        return TaskPage(tasks, total, page, pages)

    async def search(self, chat_id: int, words: str, *, limit: int = 50) -> TaskPage:
        """Open and done tasks whose title, description or tags contain every word."""
        # '#home' finds the tag home: tags are stored without their '#'.
        found = (fold(w).lstrip("#") for w in words.split())
        terms = tuple(dict.fromkeys(w for w in found if w))[:MAX_SEARCH_WORDS]
        flt = TaskFilter(statuses=(TaskStatus.OPEN, TaskStatus.DONE), words=terms)
        return await self.page(chat_id, flt, size=limit)

    async def tags(self, chat_id: int) -> list[str]:
        """Every tag used by the chat's open or done tasks, sorted."""
        sql = (
            "SELECT DISTINCT j.value FROM tasks, json_each(tasks.tags) AS j "
            "WHERE tasks.chat_id=? AND tasks.status IN (?, ?) ORDER BY j.value"
        )
        params = (chat_id, TaskStatus.OPEN.value, TaskStatus.DONE.value)
        async with self.store.db.execute(sql, params) as cur:
            return [str(r[0]) for r in await cur.fetchall()]

    async def tag_by_key(self, chat_id: int, key: str) -> str | None:
        """The chat's tag whose `tag_key` is `key`, or None once no task carries it."""
        return next((t for t in await self.tags(chat_id) if tag_key(t) == key), None)

    async def everything(self, chat_id: int, *, limit: int = 10_000) -> list[Task]:
        """Open and done tasks of the chat, for export; `limit` bounds one file's size."""
        flt = TaskFilter(statuses=(TaskStatus.OPEN, TaskStatus.DONE))
        return (await self.page(chat_id, flt, size=limit)).tasks

    async def _where(self, chat_id: int, flt: TaskFilter) -> tuple[str, tuple[object, ...]]:
        marks = ",".join("?" for _ in flt.statuses)
        clauses = ["chat_id=?", f"status IN ({marks})"]
        params: list[object] = [chat_id, *(s.value for s in flt.statuses)]
        if flt.due_from is not None:
            clauses.append("deadline_ts >= ?")
            params.append(int(flt.due_from.timestamp()))
        if flt.due_before is not None:
            clauses.append("deadline_ts < ?")
            params.append(int(flt.due_before.timestamp()))
        if flt.tag is not None:
            clauses.append("EXISTS (SELECT 1 FROM json_each(tasks.tags) WHERE value = ?)")
            params.append(flt.tag)
        if flt.words:
            # Registering is idempotent and cheap; doing it here keeps the store unaware.
            await self.store.db.create_function(_FOLD, 1, fold, deterministic=True)
            haystack = f"{_FOLD}(title || ' ' || description || ' ' || tags)"
            for word in flt.words:
                clauses.append(f"instr({haystack}, ?) > 0")
                params.append(word)
        return " AND ".join(clauses), tuple(params)


# -- export ---------------------------------------------------------------------------------


def _export_row(task: Task, tz: ZoneInfo) -> dict[str, object]:
    local = task.deadline.astimezone(tz).isoformat() if task.deadline else None
    return {**task.to_dict(), "deadline_utc": task.to_dict()["deadline"], "deadline_local": local}


def export_json(tasks: Sequence[Task], *, tz: ZoneInfo, now: datetime) -> bytes:
    """Every field of every task, deadlines in UTC and in the reader's zone."""
    body = {
        "exported_at": now.isoformat(),
        "timezone": tz.key,
        "tasks": [_export_row(t, tz) for t in tasks],
    }
    return json.dumps(body, ensure_ascii=False, indent=2).encode()


def export_csv(tasks: Sequence[Task], *, tz: ZoneInfo) -> bytes:
    """One row per task; UTF-8 with a BOM so spreadsheet programs read Cyrillic right."""
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(EXPORT_COLUMNS)
    for task in tasks:
        row = _export_row(task, tz)
        row["tags"] = " ".join(task.tags)
        writer.writerow([_cell(row[c]) for c in EXPORT_COLUMNS])
    return out.getvalue().encode("utf-8-sig")


def _cell(value: object) -> str:
    """A CSV cell a spreadsheet will not run: text starting like a formula gets a quote."""
    shown = "" if value is None else str(value)
    return "'" + shown if shown[:1] in ("=", "+", "-", "@", "\t", "\r") else shown
