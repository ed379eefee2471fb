"""The notifications server as a real process, with a real webhook receiver and SMTP sink."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import socket
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from .conftest import ToolClient, open_server, shared_server

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(60)]

SECRET = "test-signing-key"


@dataclass
class Hooks:
    """What the local webhook receiver saw."""

    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


class _MailSink:
    def __init__(self) -> None:
        self.mails: list[Message] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.mails.append(message_from_bytes(envelope.content))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def hooks() -> AsyncIterator[Hooks]:
    port = _free_port()
    seen = Hooks(url=f"http://127.0.0.1:{port}")

    async def accept(request: web.Request) -> web.Response:
        seen.received.append((dict(request.headers), await request.read()))
        return web.Response(text="ok")

    async def refuse(request: web.Request) -> web.Response:
        return web.Response(status=500, text="down")

    async def redirect(request: web.Request) -> web.Response:
        raise web.HTTPTemporaryRedirect("http://169.254.169.254/latest/meta-data/")

    app = web.Application()
    app.add_routes(
        [web.post("/hook", accept), web.post("/broken", refuse), web.post("/moved", redirect)]
    )
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    yield seen
    await runner.cleanup()


@pytest.fixture(scope="module")
def mail_sink() -> Iterator[tuple[_MailSink, int]]:
    sink, port = _MailSink(), _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    yield sink, port
    controller.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def notifications(
    tmp_path_factory: pytest.TempPathFactory,
    hooks: Hooks,
    mail_sink: tuple[_MailSink, int],
) -> AsyncIterator[ToolClient]:
    home = tmp_path_factory.mktemp("notifications")
    env = {
        "NOTIFICATIONS_HOME": str(home),
        "NOTIFICATIONS_WEBHOOK_SECRET": SECRET,
        "NOTIFICATIONS_SMTP_HOST": "127.0.0.1",
        "NOTIFICATIONS_SMTP_PORT": str(mail_sink[1]),
        "NOTIFICATIONS_POLL_SECONDS": "0.2",
        "NOTIFICATIONS_WEBHOOK_ALLOW": "127.0.0.1/32",  # the receiver above, nothing else
    }
    async with shared_server("notifications", env, home) as client:
        yield client


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


async def _due_ids(client: ToolClient, **arguments: Any) -> set[str]:
    return {item["id"] for item in await client.call("get_due_notifications", **arguments)}


async def test_telegram_message_waits_for_the_bot_until_marked_delivered(
    notifications: ToolClient,
) -> None:
    sent = await notifications.call("send_notification", recipient="tg:1001", message="Rent due")

    assert (sent["status"], sent["channel"]) == ("pending", "telegram")
    assert sent["id"] in await _due_ids(notifications)
    done = await notifications.call("mark_delivered", id=sent["id"])
    assert done["status"] == "sent"
    assert sent["id"] not in await _due_ids(notifications)
    listed = await notifications.call("list_notifications", recipient="tg:1001", status="sent")
    assert [item["id"] for item in listed] == [sent["id"]]


async def test_a_claimed_item_is_not_handed_out_twice_within_its_lease(
    notifications: ToolClient,
) -> None:
    sent = await notifications.call("send_notification", recipient="tg:1002", message="Once")

    first = await _due_ids(notifications)
    second = await _due_ids(notifications)

    assert sent["id"] in first
    assert sent["id"] not in second


async def test_same_idempotency_key_gives_the_same_notification_once(
    notifications: ToolClient,
) -> None:
    args = {"recipient": "tg:1003", "message": "Pay flat", "idempotency_key": "remind-7"}

    first = await notifications.call("send_notification", **args)
    replay = await notifications.call("send_notification", **args)

    assert replay["id"] == first["id"]
    assert len(await notifications.call("list_notifications", recipient="tg:1003")) == 1


async def test_webhook_is_posted_with_a_valid_hmac_signature(
    notifications: ToolClient, hooks: Hooks
) -> None:
    sent = await notifications.call(
        "send_notification",
        recipient=f"{hooks.url}/hook",
        message="Task finished",
        title="Done",
        channel="webhook",
    )

    assert sent["status"] == "sent"
    headers, body = next((h, b) for h, b in hooks.received if h["X-Taskbot-Delivery"] == sent["id"])
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Taskbot-Signature"] == f"sha256={expected}"
    assert json.loads(body)["message"] == "Task finished"


async def test_a_refusing_webhook_is_kept_for_retry_with_the_reason(
    notifications: ToolClient, hooks: Hooks
) -> None:
    sent = await notifications.call(
        "send_notification", recipient=f"{hooks.url}/broken", message="x", channel="webhook"
    )

    assert (sent["status"], sent["attempts"]) == ("pending", 1)
    assert "500" in sent["last_error"]


async def test_a_redirect_is_not_followed_and_counts_as_a_failure(
    notifications: ToolClient, hooks: Hooks
) -> None:
    sent = await notifications.call(
        "send_notification", recipient=f"{hooks.url}/moved", message="x", channel="webhook"
    )

    assert sent["status"] == "pending"
    assert sent["last_error"] == "OSError: HTTP 307 Temporary Redirect"


@pytest.mark.parametrize(
    "recipient",
    [
        "http://10.1.2.3/hook",  # private network
        "http://169.254.169.254/latest/meta-data/",  # link-local (cloud metadata)
        "http://[::1]:9/hook",  # loopback, IPv6
        "http://127.0.0.2:9/hook",  # loopback outside the allowed /32
        "http://0.0.0.0:9/hook",  # "this host": reaches loopback on Linux
        "http://[::ffff:10.1.2.3]/hook",  # a private IPv4 address dressed as IPv6
    ],
)
async def test_a_webhook_to_a_private_address_is_refused_before_any_connection(
    notifications: ToolClient, recipient: str
) -> None:
    sent = await notifications.call(
        "send_notification", recipient=recipient, message="x", channel="webhook"
    )

    assert sent["status"] == "pending"
    assert sent["last_error"].startswith("AddressRefused: ")
    assert sent["last_error"].endswith("is not a public address")


async def test_without_an_allowance_even_the_local_receiver_is_refused(
    tmp_path: Path, hooks: Hooks
) -> None:
    env = {"NOTIFICATIONS_HOME": str(tmp_path / "state")}
    by_name = hooks.url.replace("127.0.0.1", "localhost")
    async with open_server("notifications", env, tmp_path) as closed:
        sent = [
            await closed.call(
                "send_notification", recipient=f"{url}/hook", message="x", channel="webhook"
            )
            for url in (hooks.url, by_name)
        ]

    for item in sent:
        assert item["last_error"] == "AddressRefused: 127.0.0.1 is not a public address"
        assert all(h["X-Taskbot-Delivery"] != item["id"] for h, _ in hooks.received)


async def test_a_malformed_allowance_stops_the_server_before_it_serves(tmp_path: Path) -> None:
    env = {
        "NOTIFICATIONS_HOME": str(tmp_path / "state"),
        "NOTIFICATIONS_WEBHOOK_ALLOW": "10.0.0.0/33",
    }
    with pytest.raises(Exception):  # noqa: B017 - the SDK reports a dead server variously
        async with open_server("notifications", env, tmp_path) as never:
            await never.call("list_notifications")
    assert "10.0.0.0/33" in (tmp_path / "notifications.stderr.log").read_text()


async def test_email_reaches_the_smtp_server(
    notifications: ToolClient, mail_sink: tuple[_MailSink, int]
) -> None:
    sent = await notifications.call(
        "send_notification",
        recipient="anna@example.test",
        title="Reminder",
        message="Buy milk",
        channel="email",
    )

    assert sent["status"] == "sent"
    mail = next(m for m in mail_sink[0].mails if m["Subject"] == "Reminder")
    assert mail["To"] == "anna@example.test"
    assert "Buy milk" in str(mail.get_payload())


async def test_scheduled_daily_reminder_is_due_at_its_time_and_then_moves_a_day_on(
    notifications: ToolClient,
) -> None:
    at = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
    item = await notifications.call(
        "schedule_notification",
        recipient="tg:1004",
        message="Standup",
        send_at=_iso(at),
        repeat="daily",
        task_id="task-9",
    )

    assert item["id"] not in await _due_ids(notifications)
    assert item["id"] in await _due_ids(notifications, now=_iso(at + timedelta(minutes=1)))
    after = await notifications.call("mark_delivered", id=item["id"], idempotency_key="k-1")
    replay = await notifications.call("mark_delivered", id=item["id"], idempotency_key="k-1")

    assert after["status"] == "pending"
    assert after["send_at"] == _iso(at + timedelta(days=1))
    assert replay == after


async def test_cancelled_notification_is_never_due(notifications: ToolClient) -> None:
    past = _iso(datetime.now(UTC) - timedelta(minutes=5))
    item = await notifications.call(
        "schedule_notification", recipient="tg:1005", message="Old", send_at=past
    )

    cancelled = await notifications.call("cancel_notification", id=item["id"])
    again = await notifications.call("cancel_notification", id=item["id"])

    assert cancelled["status"] == again["status"] == "cancelled"
    assert item["id"] not in await _due_ids(notifications)


async def test_unknown_ids_and_bad_arguments_give_clear_errors(notifications: ToolClient) -> None:
    assert "not found" in await notifications.fail("cancel_notification", id="nope")
    assert "not found" in await notifications.fail("mark_delivered", id="nope")
    assert "URL" in await notifications.fail(
        "send_notification", recipient="tg:1", message="x", channel="webhook"
    )
    assert "ISO 8601" in await notifications.fail(
        "schedule_notification", recipient="tg:1", message="x", send_at="tomorrow"
    )


async def test_a_scheduled_webhook_goes_out_by_itself_when_due(
    notifications: ToolClient, hooks: Hooks
) -> None:
    at = _iso(datetime.now(UTC) - timedelta(seconds=1))
    item = await notifications.call(
        "schedule_notification",
        recipient=f"{hooks.url}/hook",
        message="Scheduled",
        send_at=at,
        channel="webhook",
    )

    for _ in range(50):
        if any(h["X-Taskbot-Delivery"] == item["id"] for h, _ in hooks.received):
            break
        await asyncio.sleep(0.1)
    else:
        pytest.fail("the due webhook was not delivered within 5 s")
    await asyncio.sleep(0.3)
    listed = await notifications.call("list_notifications", status="sent")
    assert item["id"] in {entry["id"] for entry in listed}
