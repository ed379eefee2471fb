"""Pieces every project-shipped MCP server shares: state dir, SQLite, idempotency, errors.

Contract for a server built on these: it runs alone as `python -m integrations.servers.<name>`,
keeps its state under the directory named by its own environment variable (never the CWD),
speaks only the protocol on stdout and logs quietly to stderr. Sync tools run in the SDK's
worker threads, so every database access goes through `Database`, which serialises them on one
connection. A mutating tool that gets an idempotency key records its first result in the
`idempotency` table inside the same transaction as the change, so a replay returns that
result and changes nothing.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError
from mcp.types import CallToolResult, InputRequiredResult, TextContent

LogLevel = Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"]

_IDEMPOTENCY_SCHEMA = """
CREATE TABLE IF NOT EXISTS idempotency (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    result TEXT NOT NULL,
    created TEXT NOT NULL,
    PRIMARY KEY (scope, key)
);
"""


class ToolFailure(ToolError):
    """An anticipated failure the caller should read as `{"error": message}`."""


class ErrorDictServer(MCPServer[Any]):
    """MCPServer whose anticipated failures carry `{"error": ...}` both as text and structured.

    DeltaTask-style clients look for an `error` key in the result; MCP-aware clients look at
    `isError`. Raising `ToolFailure` in a tool satisfies both.
    """

    async def call_tool(
        self,
        name: str,
        arguments: dict[str, Any],
        context: Context[Any, Any] | None = None,
    ) -> CallToolResult | InputRequiredResult:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            # The SDK re-wraps a tool's own ToolError; only ours carries a caller-ready message.
            if not isinstance(exc.__cause__, ToolFailure):
                raise
            return error_result(str(exc.__cause__))


def error_result(message: str) -> CallToolResult:
    """Build the `isError` result whose text and structured content are `{"error": message}`."""
    payload = {"error": message}
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(payload, ensure_ascii=False))],
        structured_content=payload,
        is_error=True,
    )


class _FieldsFormatter(logging.Formatter):
    """Append a record's `extra` fields as key=value, so event names stay greppable."""

    _standard = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime"}

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        fields = {k: v for k, v in record.__dict__.items() if k not in self._standard}
        return " ".join([line, *(f"{k}={v!r}" for k, v in fields.items())])


def log_level() -> LogLevel:
    """Log to stderr only, quietly by default; TASKBOT_SERVER_LOG_LEVEL=INFO shows more."""
    level = os.environ.get("TASKBOT_SERVER_LOG_LEVEL", "WARNING").upper()
    if level not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        level = "WARNING"
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_FieldsFormatter("%(levelname)s %(name)s %(message)s"))
    # Configured before MCPServer's own basicConfig, which then leaves this handler alone.
    logging.basicConfig(level=level, handlers=[handler])
    return level  # type: ignore[return-value]  # narrowed by the membership test above


def state_home(env_var: str, name: str) -> Path:
    """Resolve (and create) a server's state dir: $env_var, else $XDG_STATE_HOME/taskbot/name."""
    configured = os.environ.get(env_var)
    if configured:
        home = Path(configured).expanduser()
    else:
        xdg = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        home = Path(xdg) / "taskbot" / name
    home = home.resolve()
    home.mkdir(parents=True, exist_ok=True)
    return home


class Database:
    """One WAL-mode SQLite connection shared by a server's worker threads behind a lock."""

    def __init__(self, path: Path, schema: str) -> None:
        self.path = path
        self._lock = threading.RLock()
        # isolation_level=None: transactions are opened explicitly by tx(), never implicitly.
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.row_factory = sqlite3.Row
        self._conn.create_function("casefold", 1, _casefold, deterministic=True)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA foreign_keys=ON")
        self._conn.execute("PRAGMA busy_timeout=5000")
        self._conn.executescript(_IDEMPOTENCY_SCHEMA + schema)

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """Run a block as one write transaction; any exception rolls it back."""
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
            self._conn.execute("COMMIT")

    @contextmanager
    def read(self) -> Iterator[sqlite3.Connection]:
        """Give a block the connection for reads, serialised with the writers."""
        with self._lock:
            yield self._conn

    def once(
        self,
        scope: str,
        key: str | None,
        run: Callable[[sqlite3.Connection], dict[str, Any]],
    ) -> dict[str, Any]:
        """Run a mutation once per (scope, key): a replay returns the recorded first result."""
        with self.tx() as conn:
            if key is not None:
                row = conn.execute(
                    "SELECT result FROM idempotency WHERE scope = ? AND key = ?", (scope, key)
                ).fetchone()
                if row is not None:
                    recorded: dict[str, Any] = json.loads(row["result"])
                    return recorded
            result = run(conn)
            if key is not None:
                conn.execute(
                    "INSERT INTO idempotency (scope, key, result, created) VALUES (?, ?, ?, ?)",
                    (scope, key, json.dumps(result), to_iso(now_utc())),
                )
            return result

    def close(self) -> None:
        """Close the connection; WAL content is checkpointed by SQLite on last close."""
        with self._lock:
            self._conn.close()


def _casefold(value: str | None) -> str:
    return (value or "").casefold()


def now_utc() -> datetime:
    """Current time, timezone-aware, so stored instants compare as strings."""
    return datetime.now(UTC)


def to_iso(moment: datetime) -> str:
    """Normalise an instant to UTC ISO 8601 with seconds: the one stored time format."""
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def parse_instant(text: str, field: str) -> datetime:
    """Parse an ISO 8601 date or datetime from a caller; naive values are taken as UTC."""
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError as exc:
        raise ToolFailure(f"{field} must be an ISO 8601 date or datetime, got {text!r}") from exc
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment


def row_dict(row: sqlite3.Row) -> dict[str, Any]:
    """Turn a row into a plain dict for a tool result."""
    return {key: row[key] for key in row.keys()}  # noqa: SIM118 - Row has no __iter__ of keys
