"""Time tracking per task and user: live timers, manual entries and reports by task, day or tag.

A user has at most one running timer (a partial unique index holds that even under races).
Times are stored as UTC ISO strings; days in reports are UTC days.
Run: TIME_TRACKER_HOME=<dir> python -m integrations.servers.time_tracker
"""

from __future__ import annotations

import functools
import json
import sqlite3
import uuid
from collections import defaultdict
from datetime import timedelta
from typing import Any, Literal

from integrations.servers._common import (
    Database,
    ErrorDictServer,
    ToolFailure,
    log_level,
    now_utc,
    parse_instant,
    state_home,
    to_iso,
)

_MAX_MINUTES = 24 * 60  # one manual entry covers at most a day: catches hours typed as minutes
_SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (
    id TEXT PRIMARY KEY,
    task_id TEXT NOT NULL,
    user TEXT NOT NULL,
    started TEXT NOT NULL,
    stopped TEXT,
    minutes REAL,
    note TEXT,
    tags TEXT NOT NULL DEFAULT '[]',
    source TEXT NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS one_running_timer ON entries(user) WHERE stopped IS NULL;
CREATE INDEX IF NOT EXISTS entries_task ON entries(task_id, started);
CREATE INDEX IF NOT EXISTS entries_user ON entries(user, started);
"""

server = ErrorDictServer("time_tracker", version="1.0.0", log_level=log_level())


@functools.cache
def _db() -> Database:
    home = state_home("TIME_TRACKER_HOME", "time_tracker")
    return Database(home / "time_tracker.db", _SCHEMA)


def _entry(row: sqlite3.Row) -> dict[str, Any]:
    entry = {k: row[k] for k in ("id", "task_id", "user", "started", "stopped", "minutes")}
    entry |= {"note": row["note"], "tags": json.loads(row["tags"]), "source": row["source"]}
    entry["running"] = row["stopped"] is None
    return entry


def _running(conn: sqlite3.Connection, user: str) -> sqlite3.Row | None:
    return conn.execute(  # type: ignore[no-any-return]  # sqlite3 stubs type fetchone() as Any
        "SELECT * FROM entries WHERE user = ? AND stopped IS NULL", (user,)
    ).fetchone()


def _insert(conn: sqlite3.Connection, values: dict[str, Any]) -> dict[str, Any]:
    values = {"id": str(uuid.uuid4()), **values, "tags": json.dumps(values["tags"] or [])}
    conn.execute(
        f"INSERT INTO entries ({', '.join(values)}) VALUES ({', '.join('?' * len(values))})",
        tuple(values.values()),
    )
    row = conn.execute("SELECT * FROM entries WHERE id = ?", (values["id"],)).fetchone()
    return _entry(row)


def _bound(text: str | None, field: str, end: bool) -> str | None:
    """Turn since/until into a stored-time bound; a bare `until` date includes that day."""
    if text is None:
        return None
    moment = parse_instant(text, field)
    if end and len(text.strip()) == 10:
        moment += timedelta(days=1)
    return to_iso(moment)


@server.tool()
def start_timer(
    task_id: str,
    user: str,
    note: str | None = None,
    tags: list[str] | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Start the user's timer on a task; refused while another of theirs is running."""

    def run(conn: sqlite3.Connection) -> dict[str, Any]:
        active = _running(conn, user)
        if active is not None:
            raise ToolFailure(
                f"User {user!r} already has a running timer (entry {active['id']},"
                f" task {active['task_id']}); stop it first"
            )
        values = {"task_id": task_id, "user": user, "started": to_iso(now_utc())}
        return _insert(conn, values | {"note": note, "tags": tags, "source": "timer"})

    return _db().once("start_timer", idempotency_key, run)


@server.tool()
def stop_timer(
    user: str, entry_id: str | None = None, idempotency_key: str | None = None
) -> dict[str, Any]:
    """Stop the user's running timer and record its duration in minutes."""

    def run(conn: sqlite3.Connection) -> dict[str, Any]:
        active = _running(conn, user)
        if active is None:
            raise ToolFailure(f"User {user!r} has no running timer")
        if entry_id is not None and entry_id != active["id"]:
            raise ToolFailure(f"Entry {entry_id!r} is not {user!r}'s running timer")
        stopped = now_utc()
        seconds = (stopped - parse_instant(active["started"], "started")).total_seconds()
        conn.execute(
            "UPDATE entries SET stopped = ?, minutes = ? WHERE id = ?",
            (to_iso(stopped), round(seconds / 60, 2), active["id"]),
        )
        row = conn.execute("SELECT * FROM entries WHERE id = ?", (active["id"],)).fetchone()
        return _entry(row) | {"duration_seconds": int(seconds)}

    return _db().once("stop_timer", idempotency_key, run)


@server.tool()
def get_active_timer(user: str) -> dict[str, Any]:
    """Say whether the user has a running timer, and for how long it has run."""
    with _db().read() as conn:
        active = _running(conn, user)
    if active is None:
        return {"active": False, "entry": None, "elapsed_minutes": None}
    elapsed = now_utc() - parse_instant(active["started"], "started")
    return {
        "active": True,
        "entry": _entry(active),
        "elapsed_minutes": round(elapsed.total_seconds() / 60, 2),
    }


@server.tool()
def log_time(
    task_id: str,
    user: str,
    minutes: float,
    note: str | None = None,
    date: str | None = None,
    tags: list[str] | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Record time spent without a timer; date (ISO) is when the work started, default now."""
    if not 0 < minutes <= _MAX_MINUTES:
        raise ToolFailure(f"minutes must be more than 0 and at most {_MAX_MINUTES}")
    started = parse_instant(date, "date") if date else now_utc() - timedelta(minutes=minutes)

    def run(conn: sqlite3.Connection) -> dict[str, Any]:
        values: dict[str, Any] = {"task_id": task_id, "user": user, "started": to_iso(started)}
        values |= {"stopped": to_iso(started + timedelta(minutes=minutes)), "minutes": minutes}
        return _insert(conn, values | {"note": note, "tags": tags, "source": "manual"})

    return _db().once("log_time", idempotency_key, run)


def _select(
    conn: sqlite3.Connection,
    filters: dict[str, str | None],
    since: str | None,
    until: str | None,
    tail: str = "",
) -> list[sqlite3.Row]:
    """Fetch entries equal to the given filters that started in [since, until)."""
    conditions = {f"{column} = ?": value for column, value in filters.items()}
    conditions["started >= ?"] = _bound(since, "since", end=False)
    conditions["started < ?"] = _bound(until, "until", end=True)
    used = {clause: value for clause, value in conditions.items() if value is not None}
    where = " AND ".join(used) or "1"
    sql = f"SELECT * FROM entries WHERE {where} {tail}"
    return conn.execute(sql, tuple(used.values())).fetchall()


@server.tool()
def list_entries(
    task_id: str | None = None,
    user: str | None = None,
    since: str | None = None,
    until: str | None = None,
    limit: int = 50,
) -> list[dict[str, Any]]:
    """List time entries, newest first, running timers included."""
    with _db().read() as conn:
        filters = {"task_id": task_id, "user": user}
        rows = _select(conn, filters, since, until, f"ORDER BY started DESC LIMIT {int(limit)}")
    return [_entry(row) for row in rows]


def _keys(row: sqlite3.Row, group_by: str) -> list[str]:
    if group_by == "task":
        return [row["task_id"]]
    if group_by == "day":
        return [row["started"][:10]]
    return json.loads(row["tags"]) or ["(untagged)"]


@server.tool()
def get_report(
    user: str | None = None,
    since: str | None = None,
    until: str | None = None,
    group_by: Literal["task", "day", "tag"] = "task",
) -> dict[str, Any]:
    """Sum finished time by task, UTC day or tag; an entry with two tags counts in both."""
    # LIMIT: days are UTC days, so for a user at UTC+3 work after 21:00 lands on the next day.
    # A tz argument applied to `started` before grouping would remove it.
    with _db().read() as conn:
        rows = _select(conn, {"user": user}, since, until, "AND stopped IS NOT NULL")
    minutes: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        for key in _keys(row, group_by):
            minutes[key] += row["minutes"]
            counts[key] += 1
    order = sorted(minutes) if group_by == "day" else sorted(minutes, key=lambda k: -minutes[k])
    groups = [{"key": k, "minutes": round(minutes[k], 2), "entries": counts[k]} for k in order]
    total = round(sum(row["minutes"] for row in rows), 2)
    return {"group_by": group_by, "total_minutes": total, "groups": groups}


def main() -> None:
    """Open the store first so a bad TIME_TRACKER_HOME fails before the handshake."""
    _db()
    server.run("stdio")


if __name__ == "__main__":
    main()
