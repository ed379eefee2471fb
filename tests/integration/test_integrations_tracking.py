"""Calendar, notifications, time tracking and backup against their real servers.

Calendar: caldav-mcp over a Radicale the integration starts itself. Notifications: our server
posting to a local aiohttp receiver and mailing a local aiosmtpd sink. Time tracking and
backup: our servers over stdio. What each wrote is read back through the server's own tools.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import os
import signal
import sqlite3
import tarfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import aiohttp
import psutil
import pytest
from aiohttp import web
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, Envelope, Session

from core.errors import InputError, ToolFailed
from core.models import Change, Operation, Task, TaskStatus, new_uid
from core.settings import ServerConfig
from core.store import SqliteTaskStore
from integrations import backup as backup_module
from integrations.backup import BackupError, BackupIntegration
from integrations.calendar import CalendarIntegration, RadicaleProcess
from integrations.notifications import ChannelKind, NotificationsIntegration
from integrations.time_tracker import TimeTrackerIntegration
from tests.integration.conftest import DEADLINE, free_port
from tests.integration.conftest import make_task as shared_task

pytestmark = pytest.mark.timeout(120)

SECRET = "webhook-signing-secret"


def make_task(**changes: Any) -> Task:
    """The shared task #12, with nobody assigned."""
    return shared_task(**{"assignee": None, **changes})


async def _dav(method: str, url: str, user: str) -> int:
    """One WebDAV request as `user`; returns the status."""
    auth = {"Authorization": aiohttp.encode_basic_auth(user, "pw"), "Depth": "0"}
    async with aiohttp.ClientSession(headers=auth) as http, http.request(method, url) as answer:
        return answer.status


def _running(pid: int | None) -> bool:
    if pid is None:
        return False
    try:
        return bool(psutil.Process(pid).status() != psutil.STATUS_ZOMBIE)
    except psutil.NoSuchProcess:
        return False


# -- calendar ------------------------------------------------------------------------------


@pytest.fixture
async def calendar(data_dir: Path, no_leaked_children: None) -> AsyncIterator[CalendarIntegration]:
    async with CalendarIntegration(data_dir=data_dir) as integration:
        yield integration


async def _week(calendar: CalendarIntegration) -> list[tuple[str, datetime, str | None]]:
    events = await calendar.events(DEADLINE - timedelta(days=7), DEADLINE + timedelta(days=7))
    return [(e.summary, e.start, e.task_uid) for e in events]


async def test_a_task_with_a_deadline_becomes_an_event_at_that_time(
    calendar: CalendarIntegration,
) -> None:
    task = make_task()

    event_uid = await calendar.apply(Change(Operation.CREATE, task))

    assert event_uid
    assert await _week(calendar) == [(task.title, DEADLINE, task.uid)]
    (event,) = await calendar.events(DEADLINE, DEADLINE + timedelta(hours=1))
    assert event.uid == event_uid and event.end == DEADLINE + timedelta(minutes=30)


async def test_a_replayed_create_keeps_one_event_even_when_its_link_was_lost(
    calendar: CalendarIntegration,
) -> None:
    task = make_task()

    first = await calendar.apply(Change(Operation.CREATE, task))
    again = await calendar.apply(Change(Operation.CREATE, task, first))
    lost = await calendar.apply(Change(Operation.CREATE, task, None))

    assert first == again == lost
    assert len(await _week(calendar)) == 1


async def test_moving_the_deadline_moves_the_event(calendar: CalendarIntegration) -> None:
    task = make_task()
    event_uid = await calendar.apply(Change(Operation.CREATE, task))
    later = DEADLINE + timedelta(days=2, hours=1)

    moved = await calendar.apply(
        Change(Operation.UPDATE, task.evolve(deadline=later, version=2), event_uid)
    )

    assert moved == event_uid
    assert await _week(calendar) == [(task.title, later, task.uid)]


async def test_done_marks_the_event_and_delete_removes_it_for_good(
    calendar: CalendarIntegration,
) -> None:
    task = make_task()
    event_uid = await calendar.apply(Change(Operation.CREATE, task))

    await calendar.apply(Change(Operation.COMPLETE, task.evolve(version=2), event_uid))
    (done,) = await calendar.events(DEADLINE, DEADLINE + timedelta(hours=1))
    assert done.done and done.summary == task.title

    gone = task.evolve(status=TaskStatus.DELETED, version=3)
    await calendar.apply(Change(Operation.DELETE, gone, event_uid))
    await calendar.apply(Change(Operation.DELETE, gone, event_uid))  # replay: already gone
    await calendar.apply(Change(Operation.DELETE, gone, None))
    assert await _week(calendar) == []


async def test_a_task_without_a_deadline_makes_no_event_and_clearing_one_removes_it(
    calendar: CalendarIntegration,
) -> None:
    undated = make_task(deadline=None)
    assert await calendar.apply(Change(Operation.CREATE, undated)) is None
    assert await _week(calendar) == []

    dated = make_task()
    event_uid = await calendar.apply(Change(Operation.CREATE, dated))
    cleared = dated.evolve(deadline=None, version=2)
    await calendar.apply(Change(Operation.UPDATE, cleared, event_uid))
    assert await _week(calendar) == []

    # The deadline comes back later: the stale link finds nothing and a new event is made.
    again = await calendar.apply(Change(Operation.UPDATE, dated.evolve(version=3), event_uid))
    assert again and again != event_uid
    assert await _week(calendar) == [(dated.title, DEADLINE, dated.uid)]


async def test_undoing_a_create_removes_the_event_and_locate_then_finds_nothing(
    calendar: CalendarIntegration,
) -> None:
    task = make_task(deadline=datetime.now(UTC) + timedelta(days=3))
    event_uid = await calendar.apply(Change(Operation.CREATE, task))
    where = await calendar.locate(task.uid, event_uid)
    assert where and event_uid and event_uid[:8] in where

    failed = task.evolve(status=TaskStatus.FAILED, version=2)
    await calendar.undo(Change(Operation.UNDO, failed, event_uid), event_uid)
    await calendar.undo(Change(Operation.UNDO, failed, event_uid), event_uid)

    assert await calendar.locate(task.uid, event_uid) is None


async def test_the_integration_runs_its_own_radicale_and_leaves_no_process_behind(
    data_dir: Path, no_leaked_children: None
) -> None:
    integration = CalendarIntegration(data_dir=data_dir)
    await integration.start()
    assert integration.radicale is not None
    pid = integration.radicale.pid
    url = integration.caldav_url
    try:
        assert _running(pid)
        assert url and url.startswith("http://127.0.0.1:") and url.endswith("/taskbot/tasks/")
        assert await _dav("PROPFIND", url, "taskbot") == 207  # the calendar collection exists
        await integration.apply(Change(Operation.CREATE, make_task()))
    finally:
        await integration.close()

    assert not _running(pid)
    # A second start on the same data finds the calendar and its event again.
    async with CalendarIntegration(data_dir=data_dir) as reopened:
        assert len(await _week(reopened)) == 1


async def test_a_radicale_that_died_is_brought_back_by_the_next_change(
    calendar: CalendarIntegration,
) -> None:
    assert calendar.radicale is not None and calendar.radicale.pid is not None
    first = make_task()
    await calendar.apply(Change(Operation.CREATE, first))
    os.kill(calendar.radicale.pid, signal.SIGKILL)
    await asyncio.sleep(0.2)

    second = make_task(title="Book the venue", deadline=DEADLINE + timedelta(hours=2))
    await calendar.apply(Change(Operation.CREATE, second))

    assert [summary for summary, _, _ in await _week(calendar)] == [first.title, second.title]


async def test_an_external_caldav_url_is_used_as_configured_and_no_radicale_is_started(
    tmp_path: Path,
    data_dir: Path,
    no_leaked_children: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    elsewhere = RadicaleProcess(tmp_path / "someone-elses-radicale")
    await elsewhere.start()
    try:
        calendar_url = elsewhere.url + "alice/work/"
        assert await _dav("MKCALENDAR", calendar_url, "alice") == 201
        monkeypatch.setenv("TEST_CALDAV_PASSWORD", "pw")
        env = {
            "CALDAV_BASE_URL": elsewhere.url,
            "CALDAV_USERNAME": "alice",
            "CALDAV_PASSWORD": "${TEST_CALDAV_PASSWORD}",
            "CALDAV_CALENDAR_URL": "/alice/work/",
        }
        async with CalendarIntegration(ServerConfig(env=env), data_dir) as calendar:
            assert calendar.radicale is None and calendar.caldav_url is None
            task = make_task()
            await calendar.apply(Change(Operation.CREATE, task))
            assert await _week(calendar) == [(task.title, DEADLINE, task.uid)]
        assert not (data_dir / "servers" / "calendar" / "radicale").exists()
        stored = list((tmp_path / "someone-elses-radicale").rglob("alice/work/*.ics"))
        assert len(stored) == 1
    finally:
        await elsewhere.stop()


# -- notifications -------------------------------------------------------------------------


@dataclass
class Receiver:
    """A local webhook endpoint that records what it got and answers `status`."""

    url: str
    status: int = 200
    received: list[tuple[dict[str, str], bytes]] = field(default_factory=list)


class _MailSink:
    def __init__(self) -> None:
        self.mails: list[Message] = []

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        assert isinstance(envelope.content, bytes)
        self.mails.append(message_from_bytes(envelope.content))
        return "250 OK"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    port = free_port()
    seen = Receiver(url=f"http://127.0.0.1:{port}/hook")

    async def accept(request: web.Request) -> web.Response:
        seen.received.append((dict(request.headers), await request.read()))
        return web.Response(status=seen.status)

    app = web.Application()
    app.router.add_post("/hook", accept)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield seen
    finally:
        await runner.cleanup()


@pytest.fixture
def mail_sink() -> Iterator[tuple[_MailSink, int]]:
    sink = _MailSink()
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


@pytest.fixture
async def notifications(
    data_dir: Path,
    mail_sink: tuple[_MailSink, int],
    monkeypatch: pytest.MonkeyPatch,
    no_leaked_children: None,
) -> AsyncIterator[NotificationsIntegration]:
    monkeypatch.setenv("NOTIFICATIONS_WEBHOOK_SECRET", SECRET)
    config = ServerConfig(
        env={
            "NOTIFICATIONS_SMTP_HOST": "127.0.0.1",
            "NOTIFICATIONS_SMTP_PORT": str(mail_sink[1]),
            "NOTIFICATIONS_WEBHOOK_ALLOW": "127.0.0.1/32",  # the local receiver
        }
    )
    async with NotificationsIntegration(config, data_dir) as integration:
        yield integration


async def test_a_chat_without_extra_channels_sends_nothing(
    notifications: NotificationsIntegration,
) -> None:
    assert await notifications.apply(Change(Operation.CREATE, make_task())) is None
    assert await notifications._call_list("list_notifications") == []
    assert await notifications.notify_extra(1, "Reminder", "Due soon") == []


async def test_a_task_event_reaches_the_chats_webhook_signed_and_only_once(
    notifications: NotificationsIntegration, receiver: Receiver
) -> None:
    await notifications.set_channel(1, ChannelKind.WEBHOOK, receiver.url)
    task = make_task()

    await notifications.apply(Change(Operation.CREATE, task))
    await notifications.apply(Change(Operation.CREATE, task))  # a replay sends nothing
    await notifications.apply(Change(Operation.CREATE, make_task(chat_id=2)))  # another chat

    ((headers, body),) = receiver.received
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert headers["X-Taskbot-Signature"] == f"sha256={expected}"
    payload = json.loads(body)
    assert payload["title"] == "New task #12"
    assert payload["message"].splitlines() == [
        "Write the quarterly report",
        "Due 2026-12-10 17:00 UTC",
        "priority 2 · #work · #q4",
    ]


async def test_an_email_channel_gets_reminders_through_smtp_once_per_key(
    notifications: NotificationsIntegration, mail_sink: tuple[_MailSink, int]
) -> None:
    sink, _ = mail_sink
    await notifications.set_channel(7, ChannelKind.EMAIL, "alice@example.test")

    first = await notifications.notify_extra(7, "Reminder: #12", "Due in 1 h", key="rem-1")
    again = await notifications.notify_extra(7, "Reminder: #12", "Due in 1 h", key="rem-1")

    assert [d.status for d in first] == ["sent"]
    assert again[0].notification_id == first[0].notification_id
    (mail,) = sink.mails
    assert mail["To"] == "alice@example.test" and mail["Subject"] == "Reminder: #12"
    assert str(mail.get_payload()).strip() == "Due in 1 h"


async def test_a_failing_webhook_is_reported_and_left_to_the_servers_retry(
    notifications: NotificationsIntegration, receiver: Receiver
) -> None:
    receiver.status = 500
    await notifications.set_channel(1, ChannelKind.WEBHOOK, receiver.url)

    (delivery,) = await notifications.notify_extra(1, "Alert", "deltatask is down")

    assert delivery.status == "pending" and delivery.error and "500" in delivery.error
    (queued,) = await notifications._call_list("list_notifications", {"status": "pending"})
    assert queued["attempts"] == 1


async def test_channels_are_replaced_per_kind_kept_across_restarts_and_cleared_by_off(
    data_dir: Path, receiver: Receiver, no_leaked_children: None
) -> None:
    local = ServerConfig(env={"NOTIFICATIONS_WEBHOOK_ALLOW": "127.0.0.1/32"})
    async with NotificationsIntegration(local, data_dir) as first:
        await first.set_channel(5, ChannelKind.WEBHOOK, "https://old.example.test/x")
        await first.set_channel(5, ChannelKind.WEBHOOK, receiver.url)
        await first.set_channel(5, ChannelKind.EMAIL, "bob@example.test")
    async with NotificationsIntegration(data_dir=data_dir) as second:
        kept = [(c.kind.value, c.target) for c in await second.channels.of(5)]
        removed = await second.channels.clear(5)
        after = await second.channels.of(5)

    assert kept == [("email", "bob@example.test"), ("webhook", receiver.url)]
    assert removed == 2 and after == []


@pytest.mark.parametrize(
    ("kind", "target"),
    [
        (ChannelKind.WEBHOOK, "ftp://example.test/hook"),
        (ChannelKind.WEBHOOK, "not a url"),
        (ChannelKind.WEBHOOK, "http://192.168.1.1/hook"),  # a private address, not allowed
        (ChannelKind.EMAIL, "alice.example.test"),
        (ChannelKind.EMAIL, ""),
    ],
)
async def test_a_channel_that_is_not_http_or_an_address_is_refused(
    data_dir: Path, kind: ChannelKind, target: str
) -> None:
    integration = NotificationsIntegration(data_dir=data_dir)  # never started: no server
    with pytest.raises(InputError):
        await integration.set_channel(1, kind, target)
    assert await integration.channels.of(1) == []


# -- time tracking -------------------------------------------------------------------------


@pytest.fixture
async def tracker(
    data_dir: Path, no_leaked_children: None
) -> AsyncIterator[TimeTrackerIntegration]:
    async with TimeTrackerIntegration(data_dir=data_dir) as integration:
        yield integration


async def test_one_timer_runs_per_user_and_a_second_start_names_it(
    tracker: TimeTrackerIntegration,
) -> None:
    report, slides = make_task(), make_task(id=13, title="Slides")

    first = await tracker.start_timer(report, user_id=1)
    second = await tracker.start_timer(slides, user_id=1)
    others = await tracker.start_timer(slides, user_id=2)

    assert first.started and first.entry.task_uid == report.uid
    assert not second.started and second.entry.entry_id == first.entry.entry_id
    assert others.started and others.entry.task_uid == slides.uid
    stopped = await tracker.stop_timer(1)
    assert stopped is not None and stopped.task_uid == report.uid and not stopped.running
    assert await tracker.stop_timer(1) is None
    assert await tracker.active(1) is None


async def test_finishing_a_task_stops_the_timers_running_on_it(
    tracker: TimeTrackerIntegration,
) -> None:
    task = make_task()
    await tracker.start_timer(task, user_id=1)
    await tracker.start_timer(task, user_id=2)

    await tracker.apply(Change(Operation.COMPLETE, task.evolve(version=2)))
    await tracker.apply(Change(Operation.COMPLETE, task.evolve(version=2)))  # replay: none left

    assert await tracker.active(1) is None and await tracker.active(2) is None


async def test_reports_sum_finished_time_by_task_day_and_tag(
    tracker: TimeTrackerIntegration,
) -> None:
    report, slides = make_task(), make_task(id=13, title="Slides", tags=("work",))
    for task, minutes in ((report, 30), (slides, 45), (report, 15)):
        await tracker._call(
            "log_time",
            {"task_id": task.uid, "user": "tg:1", "minutes": minutes, "tags": list(task.tags)},
        )
    await tracker._call("log_time", {"task_id": report.uid, "user": "tg:2", "minutes": 99})

    by_task = await tracker.report(1)
    by_tag = await tracker.report(1, group_by="tag")
    entries = await tracker.entries(1)

    assert by_task.total_minutes == 90
    assert {line.key: line.minutes for line in by_task.lines} == {report.uid: 45, slides.uid: 45}
    assert {line.key: line.minutes for line in by_tag.lines} == {"work": 90, "q4": 45}
    assert sorted(e.minutes for e in entries) == [15, 30, 45]


# -- backup --------------------------------------------------------------------------------


async def _seed_state(data_dir: Path, titles: list[str]) -> None:
    """A real store with tasks, and some server state beside it."""
    async with SqliteTaskStore(data_dir / "taskbot.db") as store:
        for title in titles:
            await store.db.execute(
                "INSERT INTO tasks (uid, title, priority, status, chat_id, created_at, updated_at)"
                " VALUES (?, ?, 3, 'open', 1, '2026-12-04', '2026-12-04')",
                (new_uid(), title),
            )
    notes = data_dir / "servers" / "filesystem" / "files" / "tasks"
    notes.mkdir(parents=True, exist_ok=True)
    (notes / "a.md").write_text("# Pay rent\n")


def _titles(data_dir: Path) -> list[str]:
    with sqlite3.connect(data_dir / "taskbot.db") as conn:
        return [row[0] for row in conn.execute("SELECT title FROM tasks ORDER BY id")]


@pytest.fixture
async def backups(data_dir: Path, no_leaked_children: None) -> AsyncIterator[BackupIntegration]:
    await _seed_state(data_dir, ["Pay rent", "Call mum"])
    async with BackupIntegration(data_dir=data_dir) as integration:
        yield integration


async def test_a_backup_holds_the_store_and_the_server_state_and_verifies_clean(
    backups: BackupIntegration,
) -> None:
    info = await backups.create("manual")
    check = await backups.verify(info.backup_id)

    assert info.components == ("filesystem", "taskbot")
    assert info.path.is_file() and info.path.stat().st_size == info.size
    assert info.path.parent == backups.home
    assert check.ok and check.problems == ()


async def test_a_restore_brings_back_the_backed_up_tasks(
    backups: BackupIntegration, data_dir: Path
) -> None:
    info = await backups.create()
    await _seed_state(data_dir, ["Added after the backup"])
    (data_dir / "servers" / "filesystem" / "files" / "tasks" / "a.md").write_text("changed")

    restored = await backups.restore(info.backup_id)

    assert sorted(restored) == ["filesystem", "taskbot"]
    assert _titles(data_dir) == ["Pay rent", "Call mum"]
    assert (data_dir / "servers/filesystem/files/tasks/a.md").read_text() == "# Pay rent\n"


async def test_a_corrupted_archive_fails_verification_and_restore_replaces_nothing(
    backups: BackupIntegration, data_dir: Path
) -> None:
    info = await backups.create()
    await _seed_state(data_dir, ["Added after the backup"])
    data = bytearray(info.path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    info.path.write_bytes(bytes(data))

    check = await backups.verify(info.backup_id)
    with pytest.raises(ToolFailed, match="failed verification, nothing restored"):
        await backups.restore(info.backup_id)

    assert not check.ok and "checksum" in check.problems[0]
    assert _titles(data_dir) == ["Pay rent", "Call mum", "Added after the backup"]


async def test_the_schedule_keeps_only_the_newest_backups(
    backups: BackupIntegration, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(backup_module, "KEEP", 2)
    made = [await backups.scheduled_backup() for _ in range(3)]

    listed = await backups.list_backups()

    assert all(info is not None for info in made)
    assert [b.backup_id for b in listed] == [info.backup_id for info in made[:0:-1] if info]
    assert all(b.label == "scheduled" for b in listed)


async def test_an_archive_copied_from_elsewhere_is_adopted_and_verified(
    backups: BackupIntegration, tmp_path: Path
) -> None:
    info = await backups.create()
    outside = tmp_path / "usb" / info.path.name
    outside.parent.mkdir()
    outside.write_bytes(info.path.read_bytes())
    await backups.delete(info.backup_id)

    adopted, copied = await backups.import_archive(outside)
    check = await backups.verify(adopted)

    assert adopted == info.backup_id and copied and check.ok
    assert await backups.import_archive(backups.home / info.path.name) == (adopted, False)


async def test_a_file_that_is_no_backup_is_refused_before_anything_happens(
    backups: BackupIntegration, tmp_path: Path
) -> None:
    garbage = tmp_path / "notes.tar.gz"
    garbage.write_bytes(b"this is not gzip")
    foreign = tmp_path / "foreign.tar.gz"
    with tarfile.open(foreign, "w:gz") as tar:
        tar.add(Path(__file__), arcname="test.py")

    with pytest.raises(BackupError, match="not a readable backup archive"):
        await backups.import_archive(garbage)
    with pytest.raises(BackupError, match="no manifest"):
        await backups.import_archive(foreign)
    assert await backups.list_backups() == []
