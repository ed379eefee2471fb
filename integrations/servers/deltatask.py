"""DeltaTask-compatible task store: the same 12 tools, arguments and result keys, on SQLite.

Extensions over DeltaTask, all optional so DeltaTask clients are unaffected: `deadline` and
`external_ref` on create_task (same external_ref, same task), `include_completed` on
list_tasks, `idempotency_key` on the other mutating tools, `find_by_ref`, and
`list_changes`: every write stamps the task with the next revision number of the store and
every delete leaves a tombstone with one, so a client that remembers the last revision it
saw reads exactly what changed since, deletions included, whatever the clocks say.
Run: DELTATASK_HOME=<dir> python -m integrations.servers.deltatask
"""

from __future__ import annotations

import functools
import sqlite3
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from integrations.servers._common import (
    Database,
    ErrorDictServer,
    ToolFailure,
    log_level,
    now_utc,
    parse_instant,
    state_home,
)

_EFFORTS = (1, 2, 3, 5, 8, 13, 21)
_COLUMNS = ("title", "description", "deadline", "urgency", "effort", "completed", "parent_id")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS tasks (
    id TEXT PRIMARY KEY,
    title TEXT NOT NULL,
    description TEXT NOT NULL DEFAULT '',
    created TEXT NOT NULL,
    updated TEXT NOT NULL,
    deadline TEXT,
    urgency INTEGER NOT NULL DEFAULT 1,
    effort INTEGER NOT NULL DEFAULT 1,
    completed INTEGER NOT NULL DEFAULT 0,
    parent_id TEXT REFERENCES tasks(id) ON DELETE CASCADE,
    external_ref TEXT UNIQUE,
    rev INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS tasks_parent ON tasks(parent_id);
CREATE TABLE IF NOT EXISTS task_tags (
    task_id TEXT NOT NULL REFERENCES tasks(id) ON DELETE CASCADE,
    tag TEXT NOT NULL,
    PRIMARY KEY (task_id, tag)
);
"""

server = ErrorDictServer("deltatask", version="1.0.0", log_level=log_level())


class _TaskFields(BaseModel):
    """The writable fields of a task, validated as DeltaTask does (urgency 1-5, Fibonacci)."""

    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1)
    description: str = ""
    urgency: int = 1
    effort: int = 1
    tags: list[str] = Field(default_factory=list)
    deadline: str | None = None
    completed: bool = False
    parent_id: str | None = None
    external_ref: str | None = None

    @field_validator("urgency")
    @classmethod
    def _urgency_in_range(cls, value: int) -> int:
        if not 1 <= value <= 5:
            raise ValueError("Urgency must be between 1 and 5")
        return value

    @field_validator("effort")
    @classmethod
    def _effort_is_fibonacci(cls, value: int) -> int:
        if value not in _EFFORTS:
            raise ValueError(f"Effort must be a Fibonacci number from {list(_EFFORTS)}")
        return value

    @field_validator("deadline")
    @classmethod
    def _deadline_is_iso(cls, value: str | None) -> str | None:
        if value:
            parse_instant(value, "deadline")
        return value or None


# Added after the first release; _upgrade brings an older deltatask.db up to it.
_CHANGES_SCHEMA = """
CREATE INDEX IF NOT EXISTS tasks_rev ON tasks(rev);
CREATE TABLE IF NOT EXISTS tombstones (
    rev INTEGER PRIMARY KEY,
    id TEXT NOT NULL,
    external_ref TEXT,
    deleted TEXT NOT NULL
);
"""


@functools.cache
def _db() -> Database:
    db = Database(state_home("DELTATASK_HOME", "deltatask") / "deltatask.db", _SCHEMA)
    with db.tx() as conn:
        _upgrade(conn)
    with db.read() as conn:
        conn.executescript(_CHANGES_SCHEMA)  # executescript commits on its own: not in tx()
    return db


def _upgrade(conn: sqlite3.Connection) -> None:
    """Give a store made before revisions existed its `rev` column, numbered in write order."""
    columns = {row["name"] for row in conn.execute("PRAGMA table_info(tasks)")}
    if "rev" not in columns:
        conn.execute("ALTER TABLE tasks ADD COLUMN rev INTEGER NOT NULL DEFAULT 0")
        conn.execute(
            "UPDATE tasks SET rev = (SELECT count(*) FROM tasks AS t"
            " WHERE t.updated < tasks.updated OR (t.updated = tasks.updated AND t.id <= tasks.id))"
        )


def _stamp() -> str:
    """Now, to the microsecond as DeltaTask writes it: newest-wins needs sub-second order."""
    return now_utc().isoformat(timespec="microseconds")


def _next_rev(conn: sqlite3.Connection) -> int:
    row = conn.execute(
        "SELECT max(coalesce((SELECT max(rev) FROM tasks), 0),"
        " coalesce((SELECT max(rev) FROM tombstones), 0)) + 1"
    ).fetchone()
    return int(row[0])


def _validated(data: dict[str, Any]) -> _TaskFields:
    try:
        return _TaskFields.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(map(str, err['loc']))}: {err['msg'].removeprefix('Value error, ')}"
            for err in exc.errors()
        )
        raise ToolFailure(problems) from exc


def _require(
    conn: sqlite3.Connection, task_id: str, missing: str = "Task not found"
) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM tasks WHERE id = ?", (task_id,)).fetchone()
    if row is None:
        raise ToolFailure(missing)
    return row  # type: ignore[no-any-return]  # sqlite3 stubs type fetchone() as Any


def _tags(conn: sqlite3.Connection, task_id: str) -> list[str]:
    rows = conn.execute("SELECT tag FROM task_tags WHERE task_id = ? ORDER BY rowid", (task_id,))
    return [r["tag"] for r in rows]


def _as_dict(conn: sqlite3.Connection, row: sqlite3.Row, nested: bool) -> dict[str, Any]:
    """Render a task with DeltaTask's keys; nested adds its subtask tree under `subtasks`."""
    task: dict[str, Any] = {key: row[key] for key in ("id", "created", "updated", *_COLUMNS)}
    task["completed"] = bool(row["completed"])
    task["tags"] = _tags(conn, row["id"])
    task["external_ref"] = row["external_ref"]
    if nested:
        children = conn.execute("SELECT * FROM tasks WHERE parent_id = ?", (row["id"],))
        task["subtasks"] = _sorted([_as_dict(conn, child, True) for child in children])
    return task


def _sorted(tasks: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """DeltaTask's order: dated first by deadline, then more urgent, then less effort."""
    return sorted(
        tasks,
        key=lambda t: (t["deadline"] is None, t["deadline"] or "", -t["urgency"], t["effort"]),
    )


def _write_tags(conn: sqlite3.Connection, task_id: str, tags: list[str]) -> None:
    conn.execute("DELETE FROM task_tags WHERE task_id = ?", (task_id,))
    unique = list(dict.fromkeys(tag.strip() for tag in tags if tag.strip()))
    conn.executemany(
        "INSERT INTO task_tags (task_id, tag) VALUES (?, ?)", [(task_id, t) for t in unique]
    )


def _insert(conn: sqlite3.Connection, fields: _TaskFields) -> str:
    """Insert a validated task, or return the id already holding its external_ref."""
    if fields.external_ref is not None:
        found = conn.execute(
            "SELECT id FROM tasks WHERE external_ref = ?", (fields.external_ref,)
        ).fetchone()
        if found is not None:
            return str(found["id"])
    task_id, stamp = str(uuid.uuid4()), _stamp()
    conn.execute(
        "INSERT INTO tasks (id, created, updated, external_ref, rev, " + ", ".join(_COLUMNS) + ")"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            task_id,
            stamp,
            stamp,
            fields.external_ref,
            _next_rev(conn),
            *(getattr(fields, c) for c in _COLUMNS),
        ),
    )
    _write_tags(conn, task_id, fields.tags)
    return task_id


@server.tool()
def get_task_by_id(task_id: str) -> dict[str, Any]:
    """Get details for a specific task by ID, with its subtasks."""
    with _db().read() as conn:
        return _as_dict(conn, _require(conn, task_id), nested=True)


@server.tool()
def search_tasks(query: str) -> list[dict[str, Any]]:
    """Search tasks (completed too) by title, description or tags; case-insensitive."""
    needle = query.casefold()
    with _db().read() as conn:
        rows = conn.execute(
            "SELECT * FROM tasks WHERE instr(casefold(title), ?) OR instr(casefold(description), ?)"
            " OR id IN (SELECT task_id FROM task_tags WHERE instr(casefold(tag), ?))",
            (needle, needle, needle),
        )
        return _sorted([_as_dict(conn, row, nested=True) for row in rows])


@server.tool()
def create_task(
    title: str,
    description: str = "",
    urgency: int = 1,
    effort: int = 1,
    tags: list[str] = [],  # noqa: B006 - DeltaTask's schema shows default []; never mutated
    deadline: str | None = None,
    external_ref: str | None = None,
) -> dict[str, Any]:
    """Create a new task; the same external_ref returns the same id instead of a duplicate."""
    fields = _validated(
        {
            "title": title,
            "description": description,
            "urgency": urgency,
            "effort": effort,
            "tags": tags,
            "deadline": deadline,
            "external_ref": external_ref,
        }
    )
    with _db().tx() as conn:
        task_id = _insert(conn, fields)
    return {"id": task_id, "message": "Task created successfully"}


def _apply_update(conn: sqlite3.Connection, task_id: str, updates: dict[str, Any]) -> None:
    current = _as_dict(conn, _require(conn, task_id), nested=False)
    unknown = set(updates) - {*_COLUMNS, "tags"}
    if unknown:
        raise ToolFailure(f"Unknown fields in updates: {', '.join(sorted(unknown))}")
    merged = {k: current[k] for k in (*_COLUMNS, "tags", "external_ref")} | updates
    fields = _validated(merged)
    if fields.parent_id is not None and fields.parent_id != current["parent_id"]:
        _check_parent(conn, task_id, fields.parent_id)
    assignments = ", ".join(f"{c} = ?" for c in _COLUMNS)
    conn.execute(
        f"UPDATE tasks SET updated = ?, rev = ?, {assignments} WHERE id = ?",
        (_stamp(), _next_rev(conn), *(getattr(fields, c) for c in _COLUMNS), task_id),
    )
    if "tags" in updates:
        _write_tags(conn, task_id, fields.tags)


def _check_parent(conn: sqlite3.Connection, task_id: str, parent_id: str) -> None:
    """Refuse a parent that is missing or would make the subtask tree a cycle."""
    cursor: str | None = parent_id
    while cursor is not None:
        if cursor == task_id:
            raise ToolFailure("A task cannot become a subtask of itself or of its own subtask")
        cursor = _require(conn, cursor, "Parent task not found")["parent_id"]


@server.tool()
def update_task(
    task_id: str, updates: dict[str, Any], idempotency_key: str | None = None
) -> dict[str, Any]:
    """Update an existing task's fields (title, description, deadline, urgency, effort, ...)."""

    def run(conn: sqlite3.Connection) -> dict[str, Any]:
        _apply_update(conn, task_id, updates)
        task = _as_dict(conn, _require(conn, task_id), nested=False)
        return {"message": "Task updated successfully", "task": task}

    return _db().once("update_task", idempotency_key, run)


@server.tool()
def finish_task(task_id: str, idempotency_key: str | None = None) -> dict[str, Any]:
    """Mark a task as completed."""
    return update_task(task_id, {"completed": True}, idempotency_key)


@server.tool()
def delete_task(task_id: str, idempotency_key: str | None = None) -> dict[str, Any]:
    """Delete a task and, with it, all of its subtasks."""

    def run(conn: sqlite3.Connection) -> dict[str, Any]:
        _require(conn, task_id)
        _bury(conn, task_id)
        conn.execute("DELETE FROM tasks WHERE id = ?", (task_id,))
        return {"message": "Task deleted successfully", "id": task_id}

    return _db().once("delete_task", idempotency_key, run)


def _bury(conn: sqlite3.Connection, task_id: str) -> None:
    """Leave a tombstone for the task and every subtask the cascade is about to take."""
    tree = conn.execute(
        "WITH RECURSIVE tree(id) AS (SELECT ? UNION ALL"
        " SELECT tasks.id FROM tasks JOIN tree ON tasks.parent_id = tree.id)"
        " SELECT tasks.id, tasks.external_ref FROM tasks JOIN tree USING (id)",
        (task_id,),
    ).fetchall()
    stamp = _stamp()
    for row in tree:
        conn.execute(
            "INSERT INTO tombstones (rev, id, external_ref, deleted) VALUES (?, ?, ?, ?)",
            (_next_rev(conn), row["id"], row["external_ref"], stamp),
        )


@server.tool()
def list_changes(after: int = 0, limit: int = 500) -> dict[str, Any]:
    """Tasks written and deleted after revision `after`, oldest first, at most `limit`.

    Returns `{"tasks": [...], "deleted": [{"id", "external_ref", "deleted", "rev"}],
    "last": <highest revision returned, or after>, "more": <whether more remain>}`;
    call again with `after=last` while `more` is true.
    """
    if limit < 1:
        raise ToolFailure("limit must be at least 1")
    with _db().read() as conn:
        tasks = conn.execute(
            "SELECT * FROM tasks WHERE rev > ? ORDER BY rev LIMIT ?", (after, limit + 1)
        ).fetchall()
        buried = conn.execute(
            "SELECT * FROM tombstones WHERE rev > ? ORDER BY rev LIMIT ?", (after, limit + 1)
        ).fetchall()
        merged = sorted([*tasks, *buried], key=lambda row: int(row["rev"]))
        page, more = merged[:limit], len(merged) > limit
        written = [
            _as_dict(conn, row, nested=False) | {"rev": row["rev"]}
            for row in page
            if "created" in row.keys()  # noqa: SIM118 - sqlite3.Row has keys(), no __contains__
        ]
    deleted = [
        {k: row[k] for k in ("id", "external_ref", "deleted", "rev")}
        for row in page
        if "created" not in row.keys()  # noqa: SIM118
    ]
    last = int(page[-1]["rev"]) if page else after
    return {"tasks": written, "deleted": deleted, "last": last, "more": more}


@server.tool()
def sync_tasks() -> dict[str, Any]:
    """Kept for DeltaTask compatibility: this server has no markdown vault to sync from."""
    # LIMIT: no Obsidian vault mirror, so nothing is ever synced; a DeltaTask client that edits
    # tasks as markdown loses those edits. A vault reader feeding update_task would remove it.
    return {"message": "No tasks found for syncing", "count": 0}


@server.tool()
def list_tasks(
    tags: list[str] = None,  # type: ignore[assignment]  # noqa: RUF013 - DeltaTask's plain array
    include_completed: bool = False,
) -> list[dict[str, Any]]:
    """List open tasks (optionally with any of the given tags), each with its subtasks."""
    sql = "SELECT * FROM tasks WHERE (? OR completed = 0)"
    params: list[object] = [include_completed]
    if tags:
        marks = ",".join("?" * len(tags))
        sql += f" AND id IN (SELECT task_id FROM task_tags WHERE tag IN ({marks}))"
        params += tags
    with _db().read() as conn:
        return _sorted([_as_dict(conn, row, nested=True) for row in conn.execute(sql, params)])


@server.tool()
def get_statistics() -> dict[str, Any]:
    """Get task counts, completion rate, open tasks per urgency and deadlines due this week."""
    today = now_utc().date()
    week_end = today.fromordinal(today.toordinal() + 7)
    with _db().read() as conn:
        total = conn.execute("SELECT count(*) FROM tasks").fetchone()[0]
        done = conn.execute("SELECT count(*) FROM tasks WHERE completed = 1").fetchone()[0]
        open_rows = conn.execute(
            "SELECT urgency, deadline FROM tasks WHERE completed = 0"
        ).fetchall()
    by_urgency = dict.fromkeys(range(1, 6), 0)
    upcoming = 0
    for row in open_rows:
        by_urgency[row["urgency"]] += 1
        due = row["deadline"] and parse_instant(row["deadline"], "deadline").date()
        if due and today <= due <= week_end:
            upcoming += 1
    return {
        "total": total,
        "completed": done,
        "completion_rate": done / total * 100 if total else 0,
        "by_urgency": by_urgency,
        "upcoming_deadlines": upcoming,
    }


@server.tool()
def create_subtasks(
    task_id: str, subtasks: list[dict[str, Any]], idempotency_key: str | None = None
) -> dict[str, Any]:
    """Create subtasks under a parent; all or none are created if one is invalid."""
    validated = [_validated({**item, "parent_id": task_id}) for item in subtasks]

    def run(conn: sqlite3.Connection) -> dict[str, Any]:
        _require(conn, task_id, "Parent task not found")
        ids = [_insert(conn, fields) for fields in validated]
        return {"message": f"Created {len(ids)} subtasks", "subtask_ids": ids}

    return _db().once("create_subtasks", idempotency_key, run)


@server.tool()
def get_all_tags() -> list[str]:
    """Get all unique tag names used in tasks."""
    with _db().read() as conn:
        return [r["tag"] for r in conn.execute("SELECT DISTINCT tag FROM task_tags ORDER BY tag")]


@server.tool()
def get_subtasks(parent_id: str) -> list[dict[str, Any]]:
    """Get the open direct subtasks of a parent task."""
    with _db().read() as conn:
        _require(conn, parent_id, "Parent task not found")
        rows = conn.execute(
            "SELECT * FROM tasks WHERE parent_id = ? AND completed = 0", (parent_id,)
        )
        return _sorted([_as_dict(conn, row, nested=False) for row in rows])


@server.tool()
def find_by_ref(external_ref: str) -> dict[str, Any]:
    """Find the task created with this external_ref, so a caller can reconcile after a crash."""
    with _db().read() as conn:
        row = conn.execute("SELECT * FROM tasks WHERE external_ref = ?", (external_ref,)).fetchone()
        if row is None:
            raise ToolFailure(f"No task with external_ref {external_ref!r}")
        return _as_dict(conn, row, nested=True)


def main() -> None:
    """Open the store first so a bad DELTATASK_HOME fails before the handshake."""
    _db()
    server.run("stdio")


if __name__ == "__main__":
    main()
