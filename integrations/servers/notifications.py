"""Notification queue: telegram items wait for the bot, webhook and email items go out from here.

A notification is `pending` until delivered (`sent`), given up on (`failed`) or `cancelled`.
Whoever delivers an item first claims it for a lease, so the bot's poll, an immediate send and
the background loop never deliver the same item twice at once. A repeating item returns to
`pending` at its next time after each delivery.
Run: NOTIFICATIONS_HOME=<dir> python -m integrations.servers.notifications
Env: NOTIFICATIONS_WEBHOOK_SECRET (HMAC key), NOTIFICATIONS_SMTP_HOST/PORT/FROM,
NOTIFICATIONS_POLL_SECONDS (how often due webhook/email items are sent),
NOTIFICATIONS_WEBHOOK_ALLOW (private networks webhooks may reach; _netpolicy.py).
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import http.client
import json
import logging
import os
import smtplib
import socket
import sqlite3
import ssl
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from email.message import EmailMessage
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import anyio
import anyio.to_thread
from mcp.server.mcpserver import MCPServer

from integrations.servers._common import (
    Database,
    ErrorDictServer,
    ToolFailure,
    log_level,
    now_utc,
    parse_instant,
    row_dict,
    state_home,
    to_iso,
)
from integrations.servers._netpolicy import allowed_networks, vetted_address

Channel = Literal["telegram", "webhook", "email"]
Priority = Literal["low", "normal", "high", "urgent"]
Repeat = Literal["hourly", "daily", "weekly"]

_REPEATS = {"hourly": timedelta(hours=1), "daily": timedelta(days=1), "weekly": timedelta(weeks=1)}
# A claimed item is not handed out again for this long; bounds a crashed deliverer's stall.
_LEASE = timedelta(minutes=2)
# Attempts before an item is `failed`; retries back off 30 s, 60 s, ...
_MAX_ATTEMPTS = 3
# Bounds one webhook POST or SMTP conversation, so a dead peer cannot hold a worker thread.
_DELIVERY_TIMEOUT_SECONDS = 10.0
_SCHEMA = """
CREATE TABLE IF NOT EXISTS notifications (
    id TEXT PRIMARY KEY,
    recipient TEXT NOT NULL,
    channel TEXT NOT NULL,
    title TEXT,
    message TEXT NOT NULL,
    priority TEXT NOT NULL,
    task_id TEXT,
    send_at TEXT NOT NULL,
    repeat TEXT,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    delivered_at TEXT,
    created TEXT NOT NULL,
    claimed_until TEXT,
    idempotency_key TEXT UNIQUE
);
CREATE INDEX IF NOT EXISTS notifications_due ON notifications(status, channel, send_at);
"""

log = logging.getLogger("taskbot.servers.notifications")


@functools.cache
def _db() -> Database:
    home = state_home("NOTIFICATIONS_HOME", "notifications")
    return Database(home / "notifications.db", _SCHEMA)


def _public(row: sqlite3.Row) -> dict[str, Any]:
    item = row_dict(row)
    del item["claimed_until"], item["idempotency_key"]
    return item


def _get(conn: sqlite3.Connection, notification_id: str) -> sqlite3.Row:
    row = conn.execute("SELECT * FROM notifications WHERE id = ?", (notification_id,)).fetchone()
    if row is None:
        raise ToolFailure(f"Notification {notification_id!r} not found")
    return row  # type: ignore[no-any-return]  # sqlite3 stubs type fetchone() as Any


def _check_recipient(channel: Channel, recipient: str) -> None:
    if channel == "webhook" and not recipient.startswith(("http://", "https://")):
        raise ToolFailure("A webhook recipient must be an http(s) URL")
    if channel == "email" and "@" not in recipient:
        raise ToolFailure("An email recipient must be an email address")
    if not recipient.strip():
        raise ToolFailure("recipient must not be empty")


def _enqueue(item: dict[str, Any], claim: bool) -> tuple[dict[str, Any], bool]:
    """Insert an item once per idempotency key; say whether this call created it."""
    now = now_utc()
    with _db().tx() as conn:
        key = item["idempotency_key"]
        if key is not None:
            row = conn.execute(
                "SELECT * FROM notifications WHERE idempotency_key = ?", (key,)
            ).fetchone()
            if row is not None:
                return _public(row), False
        item |= {"id": str(uuid.uuid4()), "status": "pending", "created": to_iso(now)}
        item["claimed_until"] = to_iso(now + _LEASE) if claim else None
        columns = ", ".join(item)
        conn.execute(
            f"INSERT INTO notifications ({columns}) VALUES ({', '.join('?' * len(item))})",
            tuple(item.values()),
        )
        return _public(_get(conn, item["id"])), True


def _settle(conn: sqlite3.Connection, row: sqlite3.Row, error: str | None) -> None:
    """Record one delivery outcome: sent, next repeat, retry later, or failed."""
    now = now_utc()
    if error is None:
        status, send_at, attempts = "sent", row["send_at"], row["attempts"] + 1
        if row["repeat"]:
            status, attempts = "pending", 0
            step = _REPEATS[row["repeat"]]
            next_at = parse_instant(row["send_at"], "send_at") + step
            while next_at <= now:  # skip occurrences missed while nobody delivered
                next_at += step
            send_at = to_iso(next_at)
        delivered = to_iso(now)
    else:
        attempts, delivered = row["attempts"] + 1, row["delivered_at"]
        status = "failed" if attempts >= _MAX_ATTEMPTS else "pending"
        send_at = to_iso(now + timedelta(seconds=30 * 2 ** (attempts - 1)))
    conn.execute(
        "UPDATE notifications SET status = ?, send_at = ?, attempts = ?, last_error = ?,"
        " delivered_at = ?, claimed_until = NULL WHERE id = ?",
        (status, send_at, attempts, error, delivered, row["id"]),
    )


class _PinnedHTTP(http.client.HTTPConnection):
    """HTTP to an address checked beforehand, whatever a fresh lookup would say now."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout)
        self.address = address

    def connect(self) -> None:
        self.sock = socket.create_connection((self.address, self.port), self.timeout)


class _PinnedHTTPS(http.client.HTTPSConnection):
    """HTTPS to a checked address; the certificate is still verified for the host name."""

    def __init__(self, host: str, port: int, address: str, timeout: float) -> None:
        super().__init__(host, port, timeout=timeout, context=ssl.create_default_context())
        self.address = address

    def connect(self) -> None:
        raw = socket.create_connection((self.address, self.port), self.timeout)
        self.sock = self._context.wrap_socket(raw, server_hostname=self.host)  # type: ignore[attr-defined]


def _post_webhook(item: dict[str, Any]) -> None:
    """POST one item to a vetted address; anything but a 2xx answer is a failure."""
    body = json.dumps(
        {k: item[k] for k in ("id", "title", "message", "priority", "task_id", "send_at")}
    ).encode()
    headers = {"Content-Type": "application/json", "X-Taskbot-Delivery": item["id"]}
    secret = os.environ.get("NOTIFICATIONS_WEBHOOK_SECRET", "")
    if secret:
        digest = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        headers["X-Taskbot-Signature"] = f"sha256={digest}"
    url = urlsplit(item["recipient"])
    if url.scheme not in ("http", "https") or not url.hostname:
        raise ValueError("A webhook recipient must be an http(s) URL")
    port = url.port or (443 if url.scheme == "https" else 80)
    address = vetted_address(url.hostname, port, allowed_networks())
    pinned = _PinnedHTTPS if url.scheme == "https" else _PinnedHTTP
    conn = pinned(url.hostname, port, address, _DELIVERY_TIMEOUT_SECONDS)
    try:
        conn.request("POST", urlunsplit(("", "", url.path or "/", url.query, "")), body, headers)
        response = conn.getresponse()
        response.read()
    finally:
        conn.close()
    if not 200 <= response.status < 300:
        # Redirects are failures too: following one could lead past the address check.
        raise OSError(f"HTTP {response.status} {response.reason}")


def _deliver(item: dict[str, Any]) -> None:
    """Send one webhook or email item; raises OSError (or subclasses) when it cannot."""
    if item["channel"] == "webhook":
        _post_webhook(item)
        return
    mail = EmailMessage()
    mail["From"] = os.environ.get("NOTIFICATIONS_SMTP_FROM", "taskbot@localhost")
    mail["To"] = item["recipient"]
    mail["Subject"] = item["title"] or item["message"].splitlines()[0][:78]
    mail.set_content(item["message"])
    host = os.environ.get("NOTIFICATIONS_SMTP_HOST", "127.0.0.1")
    port = int(os.environ.get("NOTIFICATIONS_SMTP_PORT", "1025"))
    # LIMIT: plain SMTP without STARTTLS or login; fine for a local relay, not for a public
    # provider. Reading NOTIFICATIONS_SMTP_USER/PASSWORD and calling starttls() would lift it.
    with smtplib.SMTP(host, port, timeout=_DELIVERY_TIMEOUT_SECONDS) as smtp:
        smtp.send_message(mail)


async def _deliver_and_settle(item: dict[str, Any]) -> dict[str, Any]:
    error: str | None = None
    try:
        await anyio.to_thread.run_sync(_deliver, item)
    except (OSError, smtplib.SMTPException, ValueError) as exc:
        error = f"{type(exc).__name__}: {exc}"
        log.warning("notification.delivery_failed", extra={"id": item["id"], "error": error})
    with _db().tx() as conn:
        _settle(conn, _get(conn, item["id"]), error)
        return _public(_get(conn, item["id"]))


def _claim_due(now: datetime, limit: int, channels: tuple[str, ...]) -> list[dict[str, Any]]:
    """Claim up to `limit` due pending items of the given channels for one lease."""
    stamp = to_iso(now)
    marks = ",".join("?" * len(channels))
    with _db().tx() as conn:
        rows = conn.execute(
            f"SELECT * FROM notifications WHERE status = 'pending' AND channel IN ({marks})"
            " AND send_at <= ? AND (claimed_until IS NULL OR claimed_until <= ?)"
            " ORDER BY send_at LIMIT ?",
            (*channels, stamp, stamp, limit),
        ).fetchall()
        conn.executemany(
            "UPDATE notifications SET claimed_until = ? WHERE id = ?",
            [(to_iso(now + _LEASE), row["id"]) for row in rows],
        )
    return [_public(row) for row in rows]


async def _send_due_forever() -> None:
    """Deliver due webhook and email items (scheduled ones and retries) every poll period."""
    period = float(os.environ.get("NOTIFICATIONS_POLL_SECONDS", "15"))
    while True:
        try:
            for item in _claim_due(now_utc(), 20, ("webhook", "email")):
                await _deliver_and_settle(item)
        except sqlite3.Error:
            # Keep the loop alive: the claim lease lets the next round pick the items up again.
            log.exception("notification.loop_failed")
        await anyio.sleep(period)


@asynccontextmanager
async def _lifespan(_: MCPServer[Any]) -> AsyncIterator[dict[str, Any]]:
    async with anyio.create_task_group() as group:
        group.start_soon(_send_due_forever)
        yield {}
        group.cancel_scope.cancel()


server = ErrorDictServer(
    "notifications", version="1.0.0", log_level=log_level(), lifespan=_lifespan
)


@server.tool()
async def send_notification(
    recipient: str,
    message: str,
    title: str | None = None,
    priority: Priority = "normal",
    channel: Channel = "telegram",
    idempotency_key: str | None = None,
    task_id: str | None = None,
) -> dict[str, Any]:
    """Send now: telegram items are queued for the bot; webhook (URL) and email go out here."""
    _check_recipient(channel, recipient)
    now = to_iso(now_utc())
    item = {"recipient": recipient, "channel": channel, "title": title, "message": message}
    item |= {"priority": priority, "send_at": now, "idempotency_key": idempotency_key}
    item["task_id"] = task_id
    stored, created = _enqueue(item, claim=channel != "telegram")
    if created and channel != "telegram":
        return await _deliver_and_settle(stored)
    return stored


@server.tool()
def schedule_notification(
    recipient: str,
    message: str,
    send_at: str,
    task_id: str | None = None,
    repeat: Repeat | None = None,
    title: str | None = None,
    priority: Priority = "normal",
    channel: Channel = "telegram",
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Queue a notification for send_at (ISO 8601), optionally repeating hourly/daily/weekly."""
    # LIMIT: no cron expressions for repeat, only fixed periods; a reminder such as "weekdays at
    # 9" needs five weekly items. A cron parser in _settle's next-time step would lift it.
    _check_recipient(channel, recipient)
    at = to_iso(parse_instant(send_at, "send_at"))
    item = {"recipient": recipient, "channel": channel, "title": title, "message": message}
    item |= {"priority": priority, "send_at": at, "task_id": task_id, "repeat": repeat}
    item["idempotency_key"] = idempotency_key
    return _enqueue(item, claim=False)[0]


@server.tool()
def list_notifications(
    recipient: str | None = None,
    status: Literal["pending", "sent", "failed", "cancelled"] | None = None,
    task_id: str | None = None,
    limit: int = 100,
) -> list[dict[str, Any]]:
    """List notifications, soonest first, filtered by recipient, status or task."""
    clauses = {"recipient": recipient, "status": status, "task_id": task_id}
    where = " AND ".join(f"{k} = ?" for k, v in clauses.items() if v is not None) or "1"
    params = [v for v in clauses.values() if v is not None]
    with _db().read() as conn:
        rows = conn.execute(
            f"SELECT * FROM notifications WHERE {where} ORDER BY send_at LIMIT ?",
            (*params, limit),
        )
        return [_public(row) for row in rows]


@server.tool()
def cancel_notification(id: str) -> dict[str, Any]:
    """Cancel a pending notification (and its repeats); cancelling twice is harmless."""
    with _db().tx() as conn:
        row = _get(conn, id)
        if row["status"] == "sent":
            raise ToolFailure(f"Notification {id!r} was already sent")
        conn.execute(
            "UPDATE notifications SET status = 'cancelled', claimed_until = NULL WHERE id = ?",
            (id,),
        )
        return _public(_get(conn, id))


@server.tool()
def get_due_notifications(
    limit: int = 50, now: str | None = None, channel: Channel = "telegram"
) -> list[dict[str, Any]]:
    """Claim due items of a channel for 2 minutes; the bot settles each with mark_delivered."""
    moment = parse_instant(now, "now") if now else now_utc()
    return _claim_due(moment, limit, (channel,))


@server.tool()
def mark_delivered(
    id: str,
    error: str | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Record the bot's delivery outcome; an error schedules a retry until attempts run out."""

    def run(conn: sqlite3.Connection) -> dict[str, Any]:
        row = _get(conn, id)
        if row["status"] == "cancelled":
            raise ToolFailure(f"Notification {id!r} is cancelled")
        if row["status"] == "pending":
            _settle(conn, row, error)
        return _public(_get(conn, id))

    return _db().once("mark_delivered", idempotency_key, run)


def main() -> None:
    """Open the store, read the allowed networks: bad settings fail before the handshake."""
    _db()
    allowed_networks()
    server.run("stdio")


if __name__ == "__main__":
    main()
