"""The reminder loop on a real SQLite file with an injected clock: on time, once, across restarts.

The sender here records notices instead of talking to Telegram (the e2e suite covers that
path through the sandbox); everything below it, store and orchestrator, is real.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from core.errors import InputError
from core.models import Task, TaskStatus, utcnow
from core.orchestrator import EnterpriseTaskOrchestrator
from core.quickadd import Recurrence, parse_quick_add
from core.reminders import (
    DeliveryOutcome,
    Notice,
    Offset,
    ReminderKind,
    ReminderService,
    ReminderState,
    SqliteReminderStore,
    parse_offsets,
)
from core.settings import SERVER_NAMES, load_config
from core.store import MIGRATIONS, SqliteTaskStore

pytestmark = pytest.mark.timeout(60)

BERLIN = ZoneInfo("Europe/Berlin")
USER = 42  # a private chat: the chat id is the user id


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@dataclass
class Clock:
    now: datetime

    def __call__(self) -> datetime:
        return self.now


@dataclass
class RecordingSender:
    """Stands in for the chat side; answers every notice with `outcome`."""

    outcome: DeliveryOutcome = DeliveryOutcome.SENT
    notices: list[Notice] = field(default_factory=list)

    async def send_notice(self, notice: Notice) -> DeliveryOutcome:
        self.notices.append(notice)
        return self.outcome


@dataclass
class Harness:
    orch: EnterpriseTaskOrchestrator
    service: ReminderService
    sender: RecordingSender
    clock: Clock

    async def task(self, title: str, deadline: datetime | None, **fields: object) -> Task:
        fields.setdefault("chat_id", USER)
        fields.setdefault("author_id", USER)
        return await self.orch.create_task(title, deadline=deadline, **fields)  # type: ignore[arg-type]

    async def tick(self, at: datetime) -> list[Notice]:
        """Move the clock to `at`, run one tick, and return the notices it sent."""
        self.clock.now = at
        before = len(self.sender.notices)
        await self.service.tick(at)
        await self.service.wait_idle()
        return self.sender.notices[before:]

    async def sweep(
        self, start: datetime, end: datetime, step: timedelta
    ) -> list[tuple[datetime, Notice]]:
        """Tick every `step` from `start` to `end`; each notice with the tick that sent it."""
        sent: list[tuple[datetime, Notice]] = []
        at = start
        while at <= end:
            sent += [(at, n) for n in await self.tick(at)]
            at += step
        return sent

    async def rows(self, task: Task) -> list[tuple[datetime, ReminderState]]:
        return [(r.fire_at, r.state) for r in await self.service.store.for_task(task.uid)]

    async def set_zone(self, user_id: int, zone: str) -> None:
        await self.orch.store.db.execute(
            "INSERT INTO users (user_id, tz, updated_at) VALUES (?, ?, '')", (user_id, zone)
        )


OpenHarness = Callable[..., Awaitable[Harness]]
MINUTE = timedelta(minutes=1)


@pytest.fixture
async def open_harness(tmp_path: Path) -> AsyncIterator[OpenHarness]:
    """Factory: an orchestrator (no servers) and a reminder service on `tmp_path`'s store."""
    opened: list[Harness] = []
    config = load_config().with_servers(**{n: {"enabled": False} for n in SERVER_NAMES})

    async def open_one(now: datetime, *, sender: RecordingSender | None = None) -> Harness:
        orch = EnterpriseTaskOrchestrator(config=config, data_dir=tmp_path, integrations={})
        await orch.start()
        clock = Clock(now)
        recorder = sender or RecordingSender()
        service = ReminderService(orch, recorder, clock=clock)
        await service.start()
        harness = Harness(orch, service, recorder, clock)
        opened.append(harness)
        return harness

    yield open_one
    for harness in reversed(opened):
        await shut(harness)


async def shut(harness: Harness) -> None:
    await harness.service.close()
    await harness.orch.close()


# -- time ---------------------------------------------------------------------------------------


async def test_a_reminder_fires_exactly_once_at_the_right_local_time_across_the_dst_switch(
    open_harness: OpenHarness,
) -> None:
    h: Harness = await open_harness(utc(2026, 3, 27, 12))
    await h.set_zone(USER, "Europe/Berlin")
    # 09:00 in Berlin on the day clocks jump from 02:00 to 03:00: 07:00 UTC, not 08:00.
    deadline = datetime(2026, 3, 29, 9, 0, tzinfo=BERLIN)
    task = await h.task("Standup", deadline)

    sent = await h.sweep(utc(2026, 3, 28, 20), utc(2026, 3, 29, 10), MINUTE)

    assert [(at, n.task.id if n.task else None) for at, n in sent] == [
        (utc(2026, 3, 29, 6), task.id),  # one hour before: 08:00 CEST
        (utc(2026, 3, 29, 7), task.id),  # at the deadline: 09:00 CEST
    ]
    assert [at.astimezone(BERLIN).hour for at, _ in sent] == [8, 9]
    assert not any(n.late for _, n in sent)
    assert [s for _, s in await h.rows(task)] == [ReminderState.SENT, ReminderState.SENT]


async def test_a_day_offset_keeps_the_wall_clock_time_across_the_dst_switch(
    open_harness: OpenHarness,
) -> None:
    h: Harness = await open_harness(utc(2026, 3, 27, 12))
    await h.set_zone(USER, "Europe/Berlin")
    await h.service.set_offsets(USER, parse_offsets("1d"), chat_id=USER)
    task = await h.task("Standup", datetime(2026, 3, 29, 9, 0, tzinfo=BERLIN))

    fire_times = [at for at, _ in await h.rows(task)]

    # "1 day before 09:00" is 09:00 the day before (08:00 UTC in winter time), not 24 h.
    assert fire_times == [utc(2026, 3, 28, 8), utc(2026, 3, 29, 7)]


async def test_the_overdue_digest_comes_once_a_day_at_nine_in_the_users_zone(
    open_harness: OpenHarness,
) -> None:
    h: Harness = await open_harness(utc(2026, 3, 27, 12))
    await h.set_zone(USER, "Europe/Berlin")
    late = await h.task("Tax return", datetime(2026, 3, 27, 18, 0, tzinfo=BERLIN))
    await h.task("Someday", None)

    sent = await h.sweep(utc(2026, 3, 27, 12), utc(2026, 3, 30, 12), timedelta(minutes=10))
    digests = [(at, n) for at, n in sent if n.kind is ReminderKind.DIGEST]

    assert [at for at, _ in digests] == [
        utc(2026, 3, 28, 8),  # 09:00 CET
        utc(2026, 3, 29, 7),  # 09:00 CEST, after the switch
        utc(2026, 3, 30, 7),
    ]
    assert all([t.id for t in n.overdue] == [late.id] for _, n in digests)


async def test_no_digest_is_sent_once_nothing_is_overdue(
    open_harness: OpenHarness,
) -> None:
    h: Harness = await open_harness(utc(2026, 12, 4, 12))
    task = await h.task("Pay rent", utc(2026, 12, 4, 18))
    await h.orch.complete_task(task.id)

    sent = await h.sweep(utc(2026, 12, 4, 12), utc(2026, 12, 6, 12), timedelta(minutes=30))

    assert sent == []


# -- restarts, downtime, crashes ------------------------------------------------------------------


async def test_a_restart_between_scheduling_and_the_fire_time_still_delivers_once(
    open_harness: OpenHarness,
) -> None:
    first: Harness = await open_harness(utc(2026, 12, 4, 12))
    task = await first.task("Pay rent", utc(2026, 12, 4, 18))
    await shut(first)

    second: Harness = await open_harness(utc(2026, 12, 4, 13))
    early = await second.tick(utc(2026, 12, 4, 16, 59))
    hour_before = await second.tick(utc(2026, 12, 4, 17))
    again = await second.tick(utc(2026, 12, 4, 17, 0, 30))

    assert early == [] and again == []
    assert [(n.task.uid if n.task else None, n.late) for n in hour_before] == [(task.uid, False)]


async def test_a_reminder_missed_while_the_bot_was_down_is_sent_once_marked_late(
    open_harness: OpenHarness,
) -> None:
    first: Harness = await open_harness(utc(2026, 12, 4, 12))
    task = await first.task("Pay rent", utc(2026, 12, 4, 18))
    await shut(first)

    back = utc(2026, 12, 4, 21)  # both the 17:00 and the 18:00 reminder were missed
    second: Harness = await open_harness(back)
    on_start = await second.tick(back)
    later = await second.tick(back + timedelta(minutes=5))

    assert len(on_start) == 1  # the two missed reminders of one task coalesce
    assert on_start[0].late and on_start[0].task is not None
    assert on_start[0].task.uid == task.uid
    assert later == []
    assert [s for _, s in await second.rows(task)] == [ReminderState.SENT, ReminderState.SENT]


async def test_a_claim_left_by_a_killed_process_is_sent_again_once(
    open_harness: OpenHarness,
) -> None:
    first: Harness = await open_harness(utc(2026, 12, 4, 12))
    task = await first.task("Pay rent", utc(2026, 12, 4, 18))
    # A process that claimed the reminder and died before recording the send.
    await SqliteReminderStore(first.orch.store).claim_due(
        int(utc(2026, 12, 4, 18).timestamp()), "dead-boot", 10
    )
    await shut(first)

    second: Harness = await open_harness(utc(2026, 12, 4, 18, 5))
    resent = await second.tick(utc(2026, 12, 4, 18, 5))
    after = await second.tick(utc(2026, 12, 4, 18, 6))

    assert [n.task.uid if n.task else None for n in resent] == [task.uid]
    assert resent[0].late
    assert after == []


async def test_ticks_running_at_once_claim_each_reminder_once(
    open_harness: OpenHarness,
) -> None:
    h: Harness = await open_harness(utc(2026, 12, 4, 12))
    for n in range(20):
        await h.task(f"Task {n}", utc(2026, 12, 4, 18))
    other = ReminderService(h.orch, h.sender, clock=h.clock)  # a second claimer, own boot id
    at = utc(2026, 12, 4, 18)

    await asyncio.gather(h.service.tick(at), h.service.tick(at), other.tick(at))
    await h.service.wait_idle()
    await other.wait_idle()

    titles = [n.task.title for n in h.sender.notices if n.task]
    assert sorted(titles) == sorted(f"Task {n}" for n in range(20))


async def test_a_delivery_cut_short_by_shutdown_is_sent_on_the_next_tick(
    open_harness: OpenHarness,
) -> None:
    sender = RecordingSender(outcome=DeliveryOutcome.CANCELLED)
    h: Harness = await open_harness(utc(2026, 12, 4, 12), sender=sender)
    task = await h.task("Pay rent", utc(2026, 12, 4, 18))
    await h.tick(utc(2026, 12, 4, 18))
    sender.outcome = DeliveryOutcome.SENT

    retried = await h.tick(utc(2026, 12, 4, 18, 0, 1))

    assert [n.task.uid if n.task else None for n in retried] == [task.uid]
    assert (await h.rows(task))[-1][1] is ReminderState.SENT


async def test_a_refused_delivery_is_recorded_and_not_retried_every_tick(
    open_harness: OpenHarness,
) -> None:
    sender = RecordingSender(outcome=DeliveryOutcome.FORBIDDEN)
    h: Harness = await open_harness(utc(2026, 12, 4, 12), sender=sender)
    task = await h.task("Pay rent", utc(2026, 12, 4, 18))

    first = await h.tick(utc(2026, 12, 4, 18))
    second = await h.tick(utc(2026, 12, 4, 18, 1))

    assert len(first) == 1 and second == []
    assert (await h.rows(task))[-1][1] is ReminderState.FAILED


# -- following the task ------------------------------------------------------------------------


async def test_changing_the_deadline_moves_its_reminders(
    open_harness: OpenHarness,
) -> None:
    h: Harness = await open_harness(utc(2026, 12, 4, 12))
    task = await h.task("Pay rent", utc(2026, 12, 4, 18))
    await h.orch.update_task(task.id, deadline=utc(2026, 12, 5, 10))

    at_old_time = await h.tick(utc(2026, 12, 4, 18))
    at_new_time = await h.tick(utc(2026, 12, 5, 10))

    assert at_old_time == []
    assert [n.kind for n in at_new_time] == [ReminderKind.DEADLINE]
    pending = [at for at, s in await h.rows(task) if s is not ReminderState.CANCELLED]
    assert pending == [utc(2026, 12, 5, 9), utc(2026, 12, 5, 10)]


async def test_an_edit_that_keeps_the_deadline_does_not_lose_a_due_reminder(
    open_harness: OpenHarness,
) -> None:
    h: Harness = await open_harness(utc(2026, 12, 4, 12))
    task = await h.task("Pay rent", utc(2026, 12, 4, 18))
    h.clock.now = utc(2026, 12, 4, 18, 0, 30)  # due, and the tick has not run yet
    await h.orch.update_task(task.id, title="Pay the rent")

    sent = await h.tick(utc(2026, 12, 4, 18, 0, 40))

    assert [n.task.title if n.task else None for n in sent] == ["Pay the rent"]


async def test_completing_or_deleting_a_task_cancels_its_reminders(
    open_harness: OpenHarness,
) -> None:
    h: Harness = await open_harness(utc(2026, 12, 4, 12))
    done = await h.task("Pay rent", utc(2026, 12, 4, 18))
    gone = await h.task("Call Bob", utc(2026, 12, 4, 18))
    await h.orch.complete_task(done.id)
    await h.orch.delete_task(gone.id)

    sent = await h.sweep(utc(2026, 12, 4, 16), utc(2026, 12, 4, 19), timedelta(minutes=30))

    assert [n for _, n in sent if n.kind is not ReminderKind.DIGEST] == []
    for task in (done, gone):
        assert {s for _, s in await h.rows(task)} == {ReminderState.CANCELLED}


async def test_a_task_closed_behind_the_listeners_back_is_not_reminded(
    open_harness: OpenHarness,
) -> None:
    h: Harness = await open_harness(utc(2026, 12, 4, 12))
    task = await h.task("Pay rent", utc(2026, 12, 4, 18))
    await h.orch.store.set_status(task.uid, TaskStatus.FAILED)  # compensation path

    assert await h.tick(utc(2026, 12, 4, 18)) == []
    assert {s for _, s in await h.rows(task)} == {ReminderState.CANCELLED}


async def test_a_task_due_sooner_than_an_offset_gets_no_reminder_in_the_past(
    open_harness: OpenHarness,
) -> None:
    h: Harness = await open_harness(utc(2026, 12, 4, 12))
    task = await h.task("Call Bob", utc(2026, 12, 4, 12, 30))

    assert await h.rows(task) == [(utc(2026, 12, 4, 12, 30), ReminderState.PENDING)]


async def test_a_task_without_a_chat_or_a_deadline_has_no_reminders(
    open_harness: OpenHarness,
) -> None:
    h: Harness = await open_harness(utc(2026, 12, 4, 12))
    api_task = await h.orch.create_task("From the API", deadline=utc(2026, 12, 4, 18))
    undated = await h.task("Someday", None)

    assert await h.rows(api_task) == []
    assert await h.rows(undated) == []


async def test_new_offsets_move_the_reminders_of_the_users_open_tasks(
    open_harness: OpenHarness,
) -> None:
    h: Harness = await open_harness(utc(2026, 12, 1, 12))
    task = await h.task("Pay rent", utc(2026, 12, 4, 18))

    moved = await h.service.set_offsets(USER, parse_offsets("1d 15m"), chat_id=USER)

    assert moved == 1
    pending = [at for at, s in await h.rows(task) if s is ReminderState.PENDING]
    assert pending == [utc(2026, 12, 3, 18), utc(2026, 12, 4, 17, 45), utc(2026, 12, 4, 18)]
    assert (await h.service.settings_for(USER)).offsets == (Offset(days=1), Offset(minutes=15))


# -- snooze -------------------------------------------------------------------------------------


async def test_snoozing_for_15_minutes_reminds_again_15_minutes_later(
    open_harness: OpenHarness,
) -> None:
    h: Harness = await open_harness(utc(2026, 12, 4, 12))
    task = await h.task("Pay rent", utc(2026, 12, 4, 18))
    await h.tick(utc(2026, 12, 4, 18))
    h.clock.now = utc(2026, 12, 4, 18, 1)
    until = await h.service.snooze(task, "s15")

    too_early = await h.tick(utc(2026, 12, 4, 18, 15, 59))
    on_time = await h.tick(utc(2026, 12, 4, 18, 16))
    once = await h.tick(utc(2026, 12, 4, 18, 30))

    assert until == utc(2026, 12, 4, 18, 16)
    assert too_early == [] and once == []
    assert [(n.kind, n.late) for n in on_time] == [(ReminderKind.SNOOZE, False)]


async def test_snoozing_until_tomorrow_means_nine_in_the_morning_where_the_user_lives(
    open_harness: OpenHarness,
) -> None:
    h: Harness = await open_harness(utc(2026, 3, 28, 20))
    await h.set_zone(USER, "Europe/Berlin")
    task = await h.task("Pay rent", utc(2026, 3, 28, 20, 30))

    until = await h.service.snooze(task, "tmr")

    assert until == datetime(2026, 3, 29, 9, 0, tzinfo=BERLIN)


async def test_a_second_snooze_replaces_the_first(open_harness: OpenHarness) -> None:
    h: Harness = await open_harness(utc(2026, 12, 4, 18))
    task = await h.task("Pay rent", None)
    await h.service.snooze(task, "s15")
    await h.service.snooze(task, "s60")

    sent = await h.sweep(utc(2026, 12, 4, 18), utc(2026, 12, 4, 20), timedelta(minutes=5))

    assert [at for at, _ in sent] == [utc(2026, 12, 4, 19)]


# -- recurring tasks ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "zone", "created", "first", "second"),
    [
        (
            "Standup every monday 9:00",
            "UTC",
            utc(2026, 12, 4, 12),
            utc(2026, 12, 7, 9),
            utc(2026, 12, 14, 9),
        ),
        (
            "Витамины каждый день в 8",
            "Europe/Berlin",
            utc(2026, 3, 28, 10),
            datetime(2026, 3, 29, 8, tzinfo=BERLIN),  # the first morning in summer time
            datetime(2026, 3, 30, 8, tzinfo=BERLIN),
        ),
        (
            "Pay rent every month on the 1st",
            "UTC",
            utc(2026, 12, 4, 12),
            utc(2027, 1, 1, 9),
            utc(2027, 2, 1, 9),
        ),
    ],
)
async def test_completing_a_recurring_task_creates_the_next_occurrence(
    open_harness: OpenHarness,
    line: str,
    zone: str,
    created: datetime,
    first: datetime,
    second: datetime,
) -> None:
    h: Harness = await open_harness(created)
    await h.set_zone(USER, zone)
    parsed = parse_quick_add(line + " #daily !2", now=created, tz=ZoneInfo(zone))
    assert parsed.recurrence is not None
    task = await h.task(
        parsed.title,
        parsed.deadline,
        tags=parsed.tags,
        priority=parsed.priority,
        recurrence=parsed.recurrence.to_text(),
    )
    assert task.deadline == first

    await h.orch.complete_task(task.id)

    (successor,) = await h.orch.list_tasks(USER)
    assert successor.id != task.id
    assert successor.deadline == second
    assert (successor.title, successor.tags, successor.priority) == (task.title, ("daily",), 2)
    assert successor.recurrence == task.recurrence
    assert [at for at, _ in await h.rows(successor)] == [second - timedelta(hours=1), second]


async def test_a_recurring_task_completed_late_skips_to_the_next_future_occurrence(
    open_harness: OpenHarness,
) -> None:
    h: Harness = await open_harness(utc(2026, 12, 4, 12))
    rule = Recurrence("daily", 8, 0)
    task = await h.task("Vitamins", utc(2026, 12, 5, 8), recurrence=rule.to_text())
    h.clock.now = utc(2026, 12, 8, 12)  # three days late

    await h.orch.complete_task(task.id)

    (successor,) = await h.orch.list_tasks(USER)
    assert successor.deadline == utc(2026, 12, 9, 8)


async def test_a_recurrence_rule_survives_the_round_trip_through_its_text() -> None:
    rules = [
        Recurrence("weekly", 9, 0, weekday=0),
        Recurrence("daily", 8, 30),
        Recurrence("monthly", 9, 0, day_of_month=31),
    ]
    assert [Recurrence.from_text(r.to_text()) for r in rules] == rules
    assert rules[0].to_text() == "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0"
    for junk in ("", "FREQ=YEARLY", "FREQ=WEEKLY", "FREQ=DAILY;BYHOUR=25", "FREQ=DAILY;COUNT=2"):
        with pytest.raises(ValueError, match="not a recurrence rule"):
            Recurrence.from_text(junk)


# -- settings and scale ---------------------------------------------------------------------------


def test_reminder_offsets_read_like_the_command_a_user_types() -> None:
    assert parse_offsets("1d 1h 15m") == (Offset(days=1), Offset(minutes=60), Offset(minutes=15))
    assert parse_offsets("15m, 2ч 1д") == (Offset(days=1), Offset(minutes=120), Offset(minutes=15))
    assert parse_offsets("off") == ()
    for bad in ("soon", "1d tomorrow", "0m", "31d", "1m 2m 3m 4m 5m 6m"):
        with pytest.raises(InputError) as refused:
            parse_offsets(bad)
        assert refused.value.code == "bad_offsets"


async def test_the_due_scan_is_an_index_range_scan_not_a_table_scan(
    open_harness: OpenHarness,
) -> None:
    h: Harness = await open_harness(utc(2026, 12, 4, 12))
    for sql in (SqliteReminderStore.DUE_PROBE, SqliteReminderStore.DUE_BATCH):
        async with h.orch.store.db.execute(
            f"EXPLAIN QUERY PLAN {sql}", (0, 10)[: sql.count("?")]
        ) as cur:
            plan = " ".join(str(row[-1]) for row in await cur.fetchall())
        assert "USING COVERING INDEX reminders_due" in plan or "USING INDEX reminders_due" in plan
        assert "SCAN reminders" not in plan
        assert "tasks" not in plan


async def test_upgrading_a_database_gives_open_dated_tasks_their_default_reminders(
    tmp_path: Path,
) -> None:
    path = tmp_path / "taskbot.db"
    soon = int((utcnow() + timedelta(days=2)).timestamp())
    with sqlite3.connect(path) as raw:  # a database as migration 2 left it
        raw.execute("CREATE TABLE schema_version (version INTEGER NOT NULL)")
        for number, script in enumerate(MIGRATIONS[:2], start=1):
            raw.executescript(script)
            raw.execute("INSERT INTO schema_version VALUES (?)", (number,))
        raw.executemany(
            "INSERT INTO tasks (uid, title, priority, deadline_ts, status, chat_id, created_at, "
            "updated_at) VALUES (?, 't', 3, ?, ?, ?, '', '')",
            [("due", soon, "open", 5), ("done", soon, "done", 5), ("api", soon, "open", 0)],
        )

    async with SqliteTaskStore(path) as store:
        rows = await SqliteReminderStore(store).for_task("due")
        others = [await SqliteReminderStore(store).for_task(u) for u in ("done", "api")]

    assert [(r.fire_at.timestamp(), r.state) for r in rows] == [
        (soon - 3600, ReminderState.PENDING),
        (soon, ReminderState.PENDING),
    ]
    assert others == [[], []]
