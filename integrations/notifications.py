"""Extra channels beside Telegram: a chat's webhook and e-mail, through our notifications server.

Telegram stays the bot's own channel; this integration only fans out to what a chat set up
with `/notify`. Each chat has at most one webhook (http or https URL) and one e-mail address;
they live in `channels.db` in this integration's state directory (beside the server's queue,
so a backup of the state directories keeps them). A task change becomes one
`send_notification` per channel with an idempotency key of task uid, operation and version,
so a replayed change sends nothing twice. The server delivers at once (webhook: JSON POST
signed with HMAC-SHA256 when NOTIFICATIONS_WEBHOOK_SECRET is set; e-mail: SMTP) and retries
failed deliveries itself. A chat without channels costs nothing per task.

LIMIT: the messages are English whatever the chat's language, because the integration does
not know it. Storing the language with the channel at `/notify` time would lift it.
A webhook must point at a public address unless NOTIFICATIONS_WEBHOOK_ALLOW (environment
or the server's `env` in the config) opens a private network: `/notify` refuses a private IP
literal at once, the server checks every address a host name resolves to before each POST
(integrations/servers/_netpolicy.py).
"""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

from core.errors import InputError
from core.models import Change, Operation, Task
from core.settings import ServerConfig
from integrations.mcp.integration import McpIntegration
from integrations.mcp.launch import Launch, python_module
from integrations.servers._netpolicy import (
    ALLOW_ENV,
    AddressRefused,
    IPNetwork,
    allowed_networks,
    check_address,
    literal_address,
)

#: Variables the server needs from the bot's environment (the child gets a clean one).
PASSED_ENV = (
    "NOTIFICATIONS_WEBHOOK_SECRET",
    ALLOW_ENV,
    "NOTIFICATIONS_SMTP_HOST",
    "NOTIFICATIONS_SMTP_PORT",
    "NOTIFICATIONS_SMTP_FROM",
)
MAX_TARGET = 512  # bounds a stored URL or address
_EMAIL = re.compile(r"^[^@\s<>\"]+@[^@\s<>\"]+$")
_SCHEMA = """
CREATE TABLE IF NOT EXISTS channels (
    chat_id INTEGER NOT NULL,
    kind TEXT NOT NULL,
    target TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (chat_id, kind)
)
"""
_VERBS = {
    Operation.CREATE: "New task",
    Operation.UPDATE: "Task changed",
    Operation.COMPLETE: "Task done",
    Operation.DELETE: "Task deleted",
}

T = TypeVar("T")


class ChannelKind(StrEnum):
    WEBHOOK = "webhook"
    EMAIL = "email"


@dataclass(frozen=True, slots=True)
class Channel:
    kind: ChannelKind
    target: str


@dataclass(frozen=True, slots=True)
class Delivery:
    """What the server did with one notification: `sent`, `pending` (will retry) or `failed`."""

    channel: Channel
    notification_id: str
    status: str
    error: str | None


def check_target(kind: ChannelKind, target: str, allowed: tuple[IPNetwork, ...] = ()) -> str:
    """The target cleaned up, or InputError saying what a valid one looks like."""
    target = target.strip()
    if not target or len(target) > MAX_TARGET:
        raise InputError("that is not a usable address", code="bad_channel")
    if kind is ChannelKind.WEBHOOK:
        parts = urlsplit(target)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise InputError(
                "a webhook must be an http(s) URL",
                code="bad_webhook",
                suggestion="/notify webhook https://example.com/hook",
            )
        literal = literal_address(parts.hostname)
        if literal is not None:
            try:
                check_address(literal, allowed)
            except AddressRefused as exc:
                raise InputError(
                    str(exc),
                    code="private_webhook",
                    suggestion="/notify webhook https://example.com/hook",
                ) from exc
        return target
    if not _EMAIL.match(target):
        raise InputError(
            "that is not an e-mail address",
            code="bad_email",
            suggestion="/notify email me@example.com",
        )
    return target


def task_message(task: Task, op: Operation) -> tuple[str, str]:
    """(title, message) telling a channel what happened to a task."""
    title = f"{_VERBS.get(op, 'Task')} #{task.id}"
    lines = [task.title]
    if task.deadline is not None:
        lines.append(f"Due {task.deadline.astimezone(UTC):%Y-%m-%d %H:%M} UTC")
    facts = [f"priority {task.priority}", *(f"#{tag}" for tag in task.tags)]
    lines.append(" · ".join(facts))
    return title, "\n".join(lines)


class ChannelBook:
    """The chats' extra channels in a small SQLite file; every call opens, works, closes."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def _run(self, work: Callable[[sqlite3.Connection], T]) -> T:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None)
        try:
            conn.execute("PRAGMA busy_timeout=5000")
            conn.execute(_SCHEMA)
            with conn:
                return work(conn)
        finally:
            conn.close()

    async def set(self, chat_id: int, channel: Channel) -> None:
        now = datetime.now(UTC).isoformat()

        def work(conn: sqlite3.Connection) -> None:
            conn.execute(
                "INSERT INTO channels (chat_id, kind, target, created_at) VALUES (?, ?, ?, ?)"
                " ON CONFLICT (chat_id, kind) DO UPDATE SET target = excluded.target,"
                " created_at = excluded.created_at",
                (chat_id, channel.kind.value, channel.target, now),
            )

        await asyncio.to_thread(self._run, work)

    async def of(self, chat_id: int) -> list[Channel]:
        def work(conn: sqlite3.Connection) -> list[Channel]:
            rows = conn.execute(
                "SELECT kind, target FROM channels WHERE chat_id = ? ORDER BY kind", (chat_id,)
            ).fetchall()
            return [Channel(ChannelKind(kind), str(target)) for kind, target in rows]

        return await asyncio.to_thread(self._run, work)

    async def clear(self, chat_id: int) -> int:
        def work(conn: sqlite3.Connection) -> int:
            return conn.execute("DELETE FROM channels WHERE chat_id = ?", (chat_id,)).rowcount

        return await asyncio.to_thread(self._run, work)


class NotificationsIntegration(McpIntegration):
    """Sends a chat's task events and reminders to the webhook and e-mail it configured."""

    name = "notifications"

    def __init__(self, config: ServerConfig | None = None, data_dir: Path | None = None) -> None:
        super().__init__(config, data_dir)
        self.channels = ChannelBook(self.state_dir / "channels.db")

    def _launch(self) -> Launch:
        env = {"NOTIFICATIONS_HOME": str(self.state_dir)}
        env |= {name: os.environ[name] for name in PASSED_ENV if os.environ.get(name)}
        return python_module("integrations.servers.notifications", env=env)

    def _allowed(self) -> tuple[IPNetwork, ...]:
        """The private networks the server will let webhooks reach (same source as its env)."""
        configured = self.config.env.get(ALLOW_ENV)
        raw = configured if configured is not None else os.environ.get(ALLOW_ENV, "")
        return allowed_networks({ALLOW_ENV: raw})

    async def _apply(self, change: Change) -> str | None:
        task = change.task
        channels = await self.channels.of(task.chat_id)
        if not channels or change.op not in _VERBS:
            return None
        title, message = task_message(task, change.op)
        key = f"{task.uid}:{change.op.value}:{task.version}"
        await self._send_all(channels, title, message, key, task_id=str(task.id))
        return None

    async def _erase(self, change: Change, external_id: str | None) -> None:
        return None  # a sent message cannot be called back; compensation leaves it

    async def set_channel(self, chat_id: int, kind: ChannelKind, target: str) -> Channel:
        """Remember the chat's webhook or e-mail (replacing the previous one of that kind)."""
        channel = Channel(kind, check_target(kind, target, self._allowed()))
        await self.channels.set(chat_id, channel)
        return channel

    async def test_channel(self, channel: Channel) -> Delivery:
        """Send one hello to a channel, so `/notify` can tell whether it works."""
        message = "Task news and reminders of this chat will also arrive here."
        (delivery,) = await self._send_all([channel], "taskbot: channel connected", message, None)
        return delivery

    async def notify_extra(
        self,
        chat_id: int,
        title: str,
        message: str,
        *,
        key: str | None = None,
    ) -> list[Delivery]:
        """Send to every extra channel of the chat; [] when it has none.

        For deadline reminders and admin alerts beside the Telegram message. `key` (a
        reminder id, say) makes a repeated call send nothing new. Raises IntegrationError
        when the server cannot be reached; delivery failures come back as `Delivery` rows
        and the server retries them.
        """
        channels = await self.channels.of(chat_id)
        return await self._send_all(channels, title, message, key)

    async def _send_all(
        self,
        channels: list[Channel],
        title: str,
        message: str,
        key: str | None,
        *,
        task_id: str | None = None,
    ) -> list[Delivery]:
        deliveries = []
        for channel in channels:
            arguments: dict[str, Any] = {
                "recipient": channel.target,
                "channel": channel.kind.value,
                "title": title,
                "message": message,
            }
            if task_id is not None:
                arguments["task_id"] = task_id
            if key is not None:
                arguments["idempotency_key"] = f"{key}:{channel.kind.value}"
            raw = await self._call_dict("send_notification", arguments)
            deliveries.append(
                Delivery(channel, str(raw["id"]), str(raw["status"]), raw.get("last_error"))
            )
        return deliveries
