"""Calendar, time tracking, extra channels and backups, each through one user's chat.

The real runtime with the real servers: caldav-mcp over the integration's own Radicale, and
our time-tracker, notifications and backup servers; Telegram is the local sandbox, the
webhook a local aiohttp receiver.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import re
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiohttp import web

from bot.datadir import DataDirBusy, DataDirLock
from core.models import Task
from integrations.calendar import CalendarIntegration
from integrations.time_tracker import TimeTrackerIntegration
from tests.e2e.conftest import ADMIN, BotWorld, Json, StartBot

pytestmark = pytest.mark.timeout(120)

SECRET = "e2e-webhook-secret"
# The operator lets webhooks reach this host only: the tests' receiver listens on it.
LOCAL_HOOKS = {"notifications": {"env": {"NOTIFICATIONS_WEBHOOK_ALLOW": "127.0.0.1/32"}}}


async def synced(world: BotWorld, task_id: int) -> Task:
    """The task, once every server has had its change."""
    task = await world.orch.get_task(task_id)
    await world.orch.wait_synced(task.uid)
    return task


def buttons(message: Json) -> dict[str, str]:
    rows = message.get("reply_markup", {}).get("inline_keyboard", [])
    return {b["text"]: b["callback_data"] for row in rows for b in row}


# -- calendar ------------------------------------------------------------------------------


async def test_calendar_lists_the_weeks_deadlines_of_this_chat_as_the_server_holds_them(
    start_bot: StartBot,
) -> None:
    world = await start_bot(("deltatask", "calendar"))
    await world.say("/tz Europe/Moscow")
    await world.say("/new Pay rent tomorrow 18:00 #home")
    await world.say("/new Renew passport in 10 days")  # beyond the week
    await world.say("/new Buy milk")  # no deadline: no event
    await world.say("/new Secret elsewhere tomorrow 10:00", chat_id=2)
    for task_id in (1, 2, 3, 4):
        await synced(world, task_id)

    (shown,) = await world.say("/calendar")
    await world.say("/done 1")
    await synced(world, 1)
    (after,) = await world.say("/calendar")

    assert shown["text"].splitlines() == ["📅 Next 7 days (1)", "📌 Sat 05.12 18:00 — #1 Pay rent"]
    assert after["text"].splitlines()[1] == "✔️ Sat 05.12 18:00 — #1 Pay rent"
    calendar = world.orch.integration("calendar")
    assert isinstance(calendar, CalendarIntegration) and calendar.radicale is not None
    stored = list((calendar.radicale.root / "collections").rglob("taskbot/tasks/*.ics"))
    assert len(stored) == 3  # rent, passport, and the other chat's task


async def test_calendar_says_so_when_it_is_off(start_bot: StartBot) -> None:
    world = await start_bot(("deltatask",))
    (reply,) = await world.say("/calendar")
    assert reply["text"] == "The calendar is not enabled."


async def test_calendar_says_so_when_nothing_is_due_this_week(start_bot: StartBot) -> None:
    world = await start_bot(("deltatask", "calendar"))
    await world.say("/new Renew passport in 10 days")
    await synced(world, 1)
    (empty,) = await world.say("/calendar")
    assert empty["text"] == "📅 Nothing is due in the next 7 days."


# -- /export ics ---------------------------------------------------------------------------


def _unfold(data: bytes) -> list[str]:
    """Content lines of an iCalendar file, checking CRLF endings and 75-octet folding."""
    body = data.decode("utf-8")
    assert body.endswith("\r\n") and "\n" not in body.replace("\r\n", "")
    physical = body.split("\r\n")[:-1]
    assert all(len(line.encode("utf-8")) <= 75 for line in physical), "a line is not folded"
    logical: list[str] = []
    for line in physical:
        if line.startswith(" "):
            logical[-1] += line[1:]
        else:
            logical.append(line)
    return logical


def _unescape(value: str) -> str:
    escapes = {"n": "\n", "N": "\n", ",": ",", ";": ";", "\\": "\\"}
    return re.sub(r"\\(.)", lambda m: escapes.get(m.group(1), m.group(1)), value)


def _events(lines: list[str]) -> list[dict[str, str]]:
    events: list[dict[str, str]] = []
    current: dict[str, str] | None = None
    for line in lines:
        name, _, value = line.partition(":")
        if line == "BEGIN:VEVENT":
            current = {}
        elif line == "END:VEVENT" and current is not None:
            events.append(current)
            current = None
        elif current is not None:
            current[name.split(";")[0]] = value
    return events


async def test_export_ics_sends_a_calendar_file_with_each_dated_task_in_utc(
    start_bot: StartBot,
) -> None:
    world = await start_bot(("deltatask",))
    await world.say("/tz Europe/Moscow")
    title = "Call Anna, Bob; plan the Q4 budget — обсудить бюджет на квартал с бухгалтерией"
    await world.say(f"/new {title} tomorrow 18:00 #work #q4 !1")
    await world.say("/new Buy milk")
    await world.say("/new Secret elsewhere tomorrow 10:00", chat_id=2)

    (document,) = await world.say("/export ics")

    assert document["document"]["file_name"] == "tasks-2026-12-04.ics"
    assert document["caption"].startswith("📅 1 tasks with deadlines")
    raw = world.sb.file_bytes(document["document"]["file_id"])
    lines = _unfold(raw)
    assert lines[0] == "BEGIN:VCALENDAR" and lines[-1] == "END:VCALENDAR"
    assert {"VERSION:2.0", "CALSCALE:GREGORIAN"} <= set(lines)
    assert any(line.startswith("PRODID:") for line in lines)
    (event,) = _events(lines)
    task = await world.orch.get_task(1)
    assert event["UID"] == f"{task.uid}@taskbot"
    assert (event["DTSTART"], event["DTEND"]) == ("20261205T150000Z", "20261205T153000Z")
    assert _unescape(event["SUMMARY"]) == task.title == title
    assert "\\," in event["SUMMARY"] and "\\;" in event["SUMMARY"]
    assert event["CATEGORIES"] == "work,q4" and event["PRIORITY"] == "1"
    assert _unescape(event["DESCRIPTION"]) == "#1 · priority 1"


async def test_export_ics_of_a_chat_without_deadlines_says_there_is_nothing(
    start_bot: StartBot,
) -> None:
    world = await start_bot(("deltatask",))
    await world.say("/new Buy milk")
    (reply,) = await world.say("/export ics")
    assert reply["text"] == "No task here has a deadline, so there is nothing for a calendar."
    json_doc, _ = await world.say("/export", replies=2)  # the plain export is still there
    assert json_doc["document"]["file_name"].endswith(".json")


# -- /notify -------------------------------------------------------------------------------


@dataclass
class Receiver:
    url: str
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)

    async def wait_for(self, count: int) -> None:
        for _ in range(200):
            if len(self.received) >= count:
                return
            await asyncio.sleep(0.05)
        raise AssertionError(f"webhook got {len(self.received)} posts, wanted {count}")


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = int(probe.getsockname()[1])
    seen = Receiver(url=f"http://127.0.0.1:{port}/hook")

    async def accept(request: web.Request) -> web.Response:
        seen.received.append((dict(request.headers), await request.read()))
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", accept)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield seen
    finally:
        await runner.cleanup()


async def test_a_chats_webhook_gets_a_test_message_then_its_task_news_signed(
    start_bot: StartBot, receiver: Receiver, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NOTIFICATIONS_WEBHOOK_SECRET", SECRET)
    world = await start_bot(("deltatask", "notifications"), LOCAL_HOOKS)
    (none,) = await world.say("/notify")
    assert none["text"].startswith("🔔 This chat has no extra channels")

    (saved,) = await world.say(f"/notify webhook {receiver.url}")
    await world.say("/new Pay rent tomorrow 18:00 #home")
    await synced(world, 1)
    await world.say("/new Not for the hook", chat_id=2)
    await receiver.wait_for(2)
    (listed,) = await world.say("/notify")

    assert saved["text"] == f"🔔 Saved: webhook {receiver.url}. A test message went through."
    assert listed["text"].splitlines()[1] == f"• webhook: {receiver.url}"
    (_, hello), (headers, news) = receiver.received
    assert json.loads(hello)["title"] == "taskbot: channel connected"
    digest = hmac.new(SECRET.encode(), news, hashlib.sha256).hexdigest()
    assert headers["X-Taskbot-Signature"] == f"sha256={digest}"
    payload = json.loads(news)
    assert payload["title"] == "New task #1"
    assert payload["task_id"] == "1"
    assert payload["message"].splitlines()[:2] == ["Pay rent", "Due 2026-12-05 18:00 UTC"]
    await synced(world, 2)
    assert len(receiver.received) == 2  # chat 2 set up nothing


async def test_notify_refuses_a_bad_webhook_and_off_removes_the_channels(
    start_bot: StartBot, receiver: Receiver
) -> None:
    world = await start_bot(("deltatask", "notifications"), LOCAL_HOOKS)

    (refused,) = await world.say("/notify webhook ftp://example.test/hook")
    (private,) = await world.say("/notify webhook http://10.0.0.5/admin")
    await world.say(f"/notify webhook {receiver.url}/old")
    (replaced,) = await world.say(f"/notify webhook {receiver.url}")
    (mail,) = await world.say("/notify email bob@example.test")  # no SMTP server here
    (off,) = await world.say("/notify off")
    await world.say("/new Pay rent")
    await synced(world, 1)

    assert refused["text"].startswith("⚠️ A webhook must be an http:// or https:// address.")
    assert private["text"].startswith("⚠️ That address is in a private network")
    assert replaced["text"].startswith(f"One webhook per chat: {receiver.url}/old is replaced.")
    assert "(Connection refused)" in mail["text"]  # the reason, not the exception's class
    assert off["text"] == "🔕 Extra channels removed: 2."  # the webhook and the e-mail
    assert len(receiver.received) == 1  # the test post to /hook (/old has no route), no more


async def test_by_default_a_webhook_into_the_bots_own_network_is_refused(
    start_bot: StartBot, receiver: Receiver
) -> None:
    world = await start_bot(("deltatask", "notifications"))  # no allowance configured

    (refused,) = await world.say(f"/notify webhook {receiver.url}")
    (listed,) = await world.say("/notify")

    assert refused["text"].startswith("⚠️ That address is in a private network")
    assert listed["text"].startswith("🔔 This chat has no extra channels")
    assert receiver.received == []


# -- time tracking -------------------------------------------------------------------------


async def test_track_stop_and_report_show_the_time_spent_on_a_task(start_bot: StartBot) -> None:
    world = await start_bot(("deltatask", "time-tracker"), now=datetime.now(UTC))
    await world.say("/new Write the report #work")
    await world.say("/new Slides #work")

    (started,) = await world.say("/track 1")
    (busy,) = await world.say("/track 2")
    (stopped,) = await world.say("/stop")
    (idle,) = await world.say("/stop")
    tracker = world.orch.integration("time-tracker")
    assert isinstance(tracker, TimeTrackerIntegration)
    task = await world.orch.get_task(2)
    log_time = {"task_id": task.uid, "user": "tg:1", "minutes": 85, "tags": ["work"]}
    await tracker._call("log_time", log_time)
    (today,) = await world.say("/report")
    (week,) = await world.say("/report week")
    (tagged,) = await world.say("/report #work")

    assert started["text"] == "⏱ Timer started: #1 Write the report. Stop it with /stop"
    assert busy["text"].startswith("⏱ A timer is already running: #1 Write the report, 0 min")
    assert stopped["text"] == "⏹ Stopped: #1 Write the report — 0 min."
    assert idle["text"] == "No timer is running. Start one: /track 12"
    assert today["text"].splitlines() == [
        "⏱ Today: 1 h 25 min",
        "▫️ #2 Slides — 1 h 25 min",
        "▫️ #1 Write the report — 0 min",
    ]
    assert week["text"].splitlines()[0] == "⏱ Last 7 days: 1 h 25 min"
    assert week["text"].splitlines()[-1].endswith("— 1 h 25 min")  # the one day with time
    assert tagged["text"].splitlines()[:2] == ["⏱ #work: 1 h 25 min", "▫️ #2 Slides — 1 h 25 min"]


async def test_the_cards_timer_button_starts_a_timer_and_then_names_the_running_one(
    start_bot: StartBot,
) -> None:
    world = await start_bot(("deltatask", "time-tracker"), now=datetime.now(UTC))
    await world.say("/new Write the report")
    (card,) = await world.say("/task 1")
    timer = buttons(card)["⏱ Start timer"]

    first = await world.press(card, timer)
    second = await world.press(card, timer)
    (report,) = await world.say("/report")

    assert first["text"] == "⏱ Timer started: #1 Write the report. Stop it with /stop"
    assert not first["show_alert"]
    assert second["text"].startswith("⏱ A timer is already running: #1 Write the report")
    assert second["show_alert"]
    assert report["text"].splitlines()[-1].startswith("⏱ Running now: #1 Write the report")


# -- backup --------------------------------------------------------------------------------


async def test_backup_is_made_for_an_admin_and_refused_to_anyone_else(
    start_bot: StartBot, tmp_path: Path
) -> None:
    world = await start_bot(("deltatask", "backup"))
    await world.say("/new Pay rent", chat_id=ADMIN)
    await synced(world, 1)

    (refused,) = await world.say("/backup", chat_id=5)
    (made,) = await world.say("/backup", chat_id=ADMIN)

    assert refused["text"] == "This command is for admins only."
    match = re.fullmatch(r"💾 Backup (\S+): ([\d.]+ KB), with deltatask, taskbot\.", made["text"])
    assert match, made["text"]
    archive = tmp_path / "data" / "servers" / "backup" / f"{match.group(1)}.tar.gz"
    assert archive.is_file()


async def test_a_running_bot_holds_its_data_directory_against_backup_and_restore(
    start_bot: StartBot, tmp_path: Path
) -> None:
    world = await start_bot(("deltatask",))
    with pytest.raises(DataDirBusy, match="in use by a running taskbot"):
        DataDirLock(tmp_path / "data").acquire()

    world.runtime.stop.set()
    await asyncio.wait_for(world.runtime.stopped.wait(), 60)

    with DataDirLock(tmp_path / "data"):
        pass  # free again once the bot stopped
