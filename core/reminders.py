"""Deadline reminders that arrive on time, once, across restarts; and the daily overdue digest.

Contract:
- Reminders are rows of the `reminders` table (migration 3). A change listener keeps them in
  step with their task right after each change commits: a new deadline schedules one row per
  offset plus one at the deadline, a moved deadline moves them, completing or deleting the
  task cancels them, and completing a recurring task creates its next occurrence.
- `tick(now)` never reads the tasks table to find work. It probes the `(state, fire_at_ts)`
  index for one due row and, only if there is one, claims a batch in one
  `UPDATE ... RETURNING` (pending -> sending, stamped with this process's boot id). Two
  ticks (a late run beside a fresh one, or two processes on one file) never claim the same
  row. Notices go to the sender in the background; each outcome is written back: sent,
  failed, or back to pending when shutdown cut the delivery short.
- A late tick sends everything due since the last one; a reminder claimed more than
  `LATE_AFTER_S` after its time (the bot was down) is sent once, prefixed "(late)". Several
  due reminders of one task coalesce into one message.
- Delivery is at most once except in one window, chosen on purpose: a process killed after
  the request left for Telegram and before `sent` committed leaves the row `sending` under a
  dead boot id, and `start()` sends it again, marked late. A lost reminder costs a missed
  deadline, a duplicate one extra message; Telegram offers no idempotency key to close it.
  A clean stop never leaves that window open: unsent claims go back to pending.
- Time: hour and minute offsets are elapsed time; day offsets, the digest hour and
  recurrences are wall-clock times in the user's zone, so "1d before 09:00" is 09:00 the day
  before, also across a DST switch.

- Recurrence: the service plans the next occurrence (in the owner's zone) for the
  orchestrator, which writes it in the same transaction as the completion.
LIMIT: a group chat's digest uses the configured default zone and hour (settings belong to
users, a group has none). A per-chat settings row would lift it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Protocol
from zoneinfo import ZoneInfo

import aiosqlite

from core.errors import InputError, StorageError, TaskNotFound
from core.models import Operation, Task, TaskDraft, TaskStatus, utcnow
from core.orchestrator import EnterpriseTaskOrchestrator
from core.quickadd import Recurrence
from core.store import SqliteTaskStore

log = logging.getLogger("taskbot.reminders")

REMINDER_TICK_S = 1.0  # scheduler interval; a whole second keeps ticks on the second grid
TICK_PHASE_S = 0.01  # ticks run this long after each whole second, when reminders fall due
LATE_AFTER_S = 60  # claimed this long after its time, a reminder says "(late)"
TICK_BATCH = 500  # rows claimed per tick; bounds one transaction after a long downtime
MAX_INFLIGHT = 2000  # notices handed to the sender and not yet settled; back-pressure
DEFAULT_DIGEST_HOUR = 9  # local hour of the overdue digest and of "snooze until tomorrow"
DIGEST_MAX_TASKS = 30  # tasks listed in one digest; keeps it one readable message
RETENTION_S = 30 * 86400  # settled rows older than this are purged ...
PURGE_EVERY_S = 3600  # ... at most this often, from the tick
RESCHEDULE_PAGE = 500  # open tasks read at once when /remind moves a chat's reminders
MAX_OFFSETS = 5
MAX_OFFSET_DAYS = 30
SNOOZES = {"s15": timedelta(minutes=15), "s60": timedelta(hours=1)}  # plus "tmr": tomorrow


class ReminderKind(StrEnum):
    DEADLINE = "deadline"  # before or at the task's deadline
    SNOOZE = "snooze"  # asked for from a reminder's button
    DIGEST = "digest"  # a chat's daily list of overdue tasks (task_uid is '')


class ReminderState(StrEnum):
    PENDING = "pending"
    SENDING = "sending"  # claimed by the process named in `claim`
    SENT = "sent"
    CANCELLED = "cancelled"  # the task changed, closed, or there was nothing to say
    FAILED = "failed"  # Telegram refused it definitively (blocked chat, bad request)


class DeliveryOutcome(StrEnum):
    """What became of one message handed to the chat side."""

    SENT = "sent"
    FORBIDDEN = "forbidden"  # the chat blocked the bot; it is now marked inactive
    FAILED = "failed"  # refused or undeliverable after retries
    CANCELLED = "cancelled"  # not sent because the process is stopping; try again later


@dataclass(frozen=True, slots=True)
class Offset:
    """How long before a deadline to remind: days on the wall clock, minutes elapsed."""

    days: int = 0
    minutes: int = 0

    def before(self, deadline: datetime, tz: ZoneInfo) -> datetime:
        local = deadline.astimezone(tz).replace(tzinfo=None) - timedelta(days=self.days)
        at = local.replace(tzinfo=tz).astimezone(UTC)
        return at - timedelta(minutes=self.minutes)

    def to_text(self) -> str:
        if self.days:
            return f"{self.days}d"
        if self.minutes % 60 == 0:
            return f"{self.minutes // 60}h"
        return f"{self.minutes}m"

    @property
    def span(self) -> timedelta:
        """Nominal length, for ordering and display (a DST day may really be 23 or 25 h)."""
        return timedelta(days=self.days, minutes=self.minutes)


DEFAULT_OFFSETS: tuple[Offset, ...] = (Offset(minutes=60),)
_OFFSET_RX = re.compile(r"(\d{1,4})\s*(d|h|m|min|д|дн|ч|м|мин)")


def parse_offsets(text: str) -> tuple[Offset, ...]:
    """Read "/remind 1d 1h 15m" (or "off": only at the deadline), longest first."""
    words = text.strip().lower()
    if words in ("off", "none", "0", "выкл", "нет"):
        return ()
    found: list[Offset] = []
    rest = _OFFSET_RX.sub(lambda m: _collect(m, found), words)
    if rest.strip(" ,;") or not found or len(set(found)) > MAX_OFFSETS:
        raise InputError(
            f"reminder times look like 1d 1h 15m (at most {MAX_OFFSETS})",
            code="bad_offsets",
            suggestion="/remind 1d 1h 15m",
        )
    return tuple(sorted(set(found), key=lambda o: o.span, reverse=True))


def _collect(m: re.Match[str], found: list[Offset]) -> str:
    number, unit = int(m[1]), m[2]
    offset = (
        Offset(days=number)
        if unit.startswith(("d", "д"))
        else Offset(minutes=number * (60 if unit in ("h", "ч") else 1))
    )
    if number == 0 or offset.span > timedelta(days=MAX_OFFSET_DAYS):
        raise InputError(
            f"a reminder goes 1 minute to {MAX_OFFSET_DAYS} days ahead",
            code="bad_offsets",
            suggestion="/remind 1d 1h 15m",
        )
    found.append(offset)
    return " "


def offsets_text(offsets: Sequence[Offset]) -> str:
    """What `parse_offsets` reads back; '' means only at the deadline."""
    return " ".join(o.to_text() for o in offsets)


@dataclass(frozen=True, slots=True)
class ReminderSettings:
    """One user's reminder preferences, with the configured defaults filled in."""

    user_id: int
    tz: ZoneInfo
    lang: str | None
    offsets: tuple[Offset, ...]
    digest_hour: int

    def morning_after(self, moment: datetime) -> datetime:
        """The first digest hour (local wall clock) strictly after `moment`, in UTC."""
        day = moment.astimezone(self.tz).date()
        for step in range(3):  # today's hour may have passed; tomorrow's never has
            at = _wall(day + timedelta(days=step), self.digest_hour, self.tz)
            if at > moment:
                return at
        raise AssertionError("unreachable: tomorrow's morning is always ahead")


@dataclass(frozen=True, slots=True)
class Reminder:
    """One row of the reminders table."""

    id: int
    task_uid: str
    chat_id: int
    kind: ReminderKind
    fire_at: datetime
    state: ReminderState
    late: bool


@dataclass(frozen=True, slots=True)
class Notice:
    """One message the reminder loop asks the chat side to send."""

    reminders: tuple[Reminder, ...]
    chat_id: int
    kind: ReminderKind
    fire_at: datetime
    late: bool
    settings: ReminderSettings
    task: Task | None = None  # deadline and snooze notices
    overdue: tuple[Task, ...] = ()  # digest notices


class NoticeSender(Protocol):
    """The chat side: renders a notice, sends it within the platform's limits, says how it went."""

    async def send_notice(self, notice: Notice) -> DeliveryOutcome: ...


def until_next_tick(epoch: float) -> float:
    """Seconds from `epoch` to the next tick on the grid: due time to hand-over stays ~10 ms."""
    return (TICK_PHASE_S - epoch) % REMINDER_TICK_S


def _ts(moment: datetime) -> int:
    """Whole seconds, rounded up: a reminder may come a little late, never early."""
    return math.ceil(moment.timestamp())


def _at(ts: int) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def _wall(day: date, hour: int, tz: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, hour, tzinfo=tz).astimezone(UTC)


_REMINDER_COLUMNS = "id, task_uid, chat_id, kind, fire_at_ts, state, late"


def _reminder(row: Sequence[object]) -> Reminder:
    return Reminder(
        id=int(row[0]),  # type: ignore[call-overload]
        task_uid=str(row[1]),
        chat_id=int(row[2]),  # type: ignore[call-overload]
        kind=ReminderKind(str(row[3])),
        fire_at=_at(int(row[4])),  # type: ignore[call-overload]
        state=ReminderState(str(row[5])),
        late=bool(row[6]),
    )


class SqliteReminderStore:
    """Reminder rows, user settings and chat reachability, in the task store's SQLite file."""

    # The only reads a tick makes: range scans of reminders_due (a test pins the plans).
    DUE_PROBE = "SELECT 1 FROM reminders WHERE state='pending' AND fire_at_ts<=? LIMIT 1"
    DUE_BATCH = (
        "SELECT id FROM reminders WHERE state='pending' AND fire_at_ts<=? "
        "ORDER BY fire_at_ts LIMIT ?"
    )

    def __init__(self, store: SqliteTaskStore) -> None:
        self._store = store

    @contextlib.asynccontextmanager
    async def _tx(self) -> AsyncIterator[aiosqlite.Connection]:
        # The task store's one connection and its write lock: a second connection would bring
        # back "database is locked", and skipping the lock would interleave two transactions.
        try:
            async with self._store.transaction() as db:
                yield db
        except aiosqlite.Error as exc:
            raise StorageError(f"reminder store: {exc}") from exc

    async def _rows(self, sql: str, params: Sequence[object]) -> list[Reminder]:
        async with self._store.db.execute(sql, params) as cur:
            return [_reminder(r) for r in await cur.fetchall()]

    # -- scheduling ---------------------------------------------------------------------------

    async def replace_deadline(
        self, uid: str, chat_id: int, *, keep: Iterable[int], add: Iterable[int]
    ) -> None:
        """Cancel pending deadline rows not in `keep`, schedule `add`; settled rows stay."""
        kept = sorted(set(keep))
        stamp = utcnow().isoformat()
        marks = ",".join("?" for _ in kept) or "NULL"
        async with self._tx() as db:
            await db.execute(
                "UPDATE reminders SET state='cancelled', updated_at=? WHERE task_uid=? "
                f"AND kind='deadline' AND state='pending' AND fire_at_ts NOT IN ({marks})",
                (stamp, uid, *kept),
            )
            await self._upsert(db, uid, chat_id, ReminderKind.DEADLINE, sorted(set(add)), stamp)

    async def snooze(self, uid: str, chat_id: int, fire_at: int) -> None:
        """One pending snooze per task: a new one replaces the last."""
        stamp = utcnow().isoformat()
        async with self._tx() as db:
            await db.execute(
                "UPDATE reminders SET state='cancelled', updated_at=? WHERE task_uid=? "
                "AND kind='snooze' AND state='pending'",
                (stamp, uid),
            )
            await self._upsert(db, uid, chat_id, ReminderKind.SNOOZE, [fire_at], stamp)

    @staticmethod
    async def _upsert(
        db: aiosqlite.Connection,
        uid: str,
        chat_id: int,
        kind: ReminderKind,
        fire_ats: Sequence[int],
        stamp: str,
    ) -> None:
        # A cancelled row comes back to life (the deadline moved away and back); a row that
        # is sending or was sent is never touched, so an edit cannot make it fire twice.
        await db.executemany(
            "INSERT INTO reminders (task_uid, chat_id, kind, fire_at_ts, state, created_at, "
            "updated_at) VALUES (?,?,?,?,'pending',?,?) "
            "ON CONFLICT (task_uid, chat_id, kind, fire_at_ts) DO UPDATE SET "
            "state='pending', claim=NULL, late=0, updated_at=excluded.updated_at "
            "WHERE state='cancelled'",
            [(uid, chat_id, kind.value, ts, stamp, stamp) for ts in fire_ats],
        )

    async def cancel_task(self, uid: str) -> int:
        """Cancel every pending reminder of a task (done, deleted)."""
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE reminders SET state='cancelled', updated_at=? "
                "WHERE task_uid=? AND state='pending'",
                (utcnow().isoformat(), uid),
            )
            return cur.rowcount

    async def ensure_digest(self, chat_id: int, fire_at: int) -> None:
        """At most one pending digest per chat, at the earliest time anyone asked for."""
        stamp = utcnow().isoformat()
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE OR IGNORE reminders SET fire_at_ts=MIN(fire_at_ts, ?), updated_at=? "
                "WHERE task_uid='' AND chat_id=? AND kind='digest' AND state='pending'",
                (fire_at, stamp, chat_id),
            )
            if cur.rowcount == 0:
                await db.execute(
                    "INSERT OR IGNORE INTO reminders (task_uid, chat_id, kind, fire_at_ts, "
                    "state, created_at, updated_at) VALUES ('',?,'digest',?,'pending',?,?)",
                    (chat_id, fire_at, stamp, stamp),
                )

    # -- the loop -----------------------------------------------------------------------------

    async def any_due(self, now_ts: int) -> bool:
        """One probe of the reminders_due index: the whole cost of an idle tick."""
        # One hop to the SQLite thread, not three (execute, fetch, close): the query itself
        # takes microseconds, so the hops are what a tick costs.
        return bool(await self._store.db.execute_fetchall(self.DUE_PROBE, (now_ts,)))

    async def claim_due(self, now_ts: int, claim: str, limit: int) -> list[Reminder]:
        """Take up to `limit` due rows for sending, oldest first; each row goes to one claimer."""
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE reminders SET state='sending', claim=?, updated_at=?, "
                f"late = (? - fire_at_ts > ?) WHERE id IN ({self.DUE_BATCH}) "
                f"RETURNING {_REMINDER_COLUMNS}",
                (claim, utcnow().isoformat(), now_ts, LATE_AFTER_S, now_ts, limit),
            )
            rows = [_reminder(r) for r in await cur.fetchall()]
        return sorted(rows, key=lambda r: (r.fire_at, r.id))

    async def settle(
        self, ids: Sequence[int], state: ReminderState, *, sent_at: datetime | None = None
    ) -> None:
        """Record the outcome of claimed rows; PENDING hands them back for a later tick."""
        marks = ",".join("?" for _ in ids)
        async with self._tx() as db:
            await db.execute(
                f"UPDATE reminders SET state=?, sent_at=?, updated_at=?, "
                f"claim=CASE WHEN ?='pending' THEN NULL ELSE claim END WHERE id IN ({marks})",
                (
                    state.value,
                    sent_at.isoformat() if sent_at else None,
                    utcnow().isoformat(),
                    state.value,
                    *ids,
                ),
            )

    async def release_orphans(self, claim: str) -> int:
        """Hand rows claimed by a process that died back to pending; returns how many."""
        async with self._tx() as db:
            cur = await db.execute(
                "UPDATE reminders SET state='pending', claim=NULL, updated_at=? "
                "WHERE state='sending' AND claim IS NOT ?",
                (utcnow().isoformat(), claim),
            )
            return cur.rowcount

    async def purge(self, before_ts: int) -> int:
        """Delete settled rows older than `before_ts` (range scans reminders_due per state)."""
        async with self._tx() as db:
            cur = await db.execute(
                "DELETE FROM reminders WHERE state IN ('sent','cancelled','failed') "
                "AND fire_at_ts < ?",
                (before_ts,),
            )
            return cur.rowcount

    async def for_task(self, uid: str) -> list[Reminder]:
        """Every row of one task, by time (tests, and a task's detail view)."""
        return await self._rows(
            f"SELECT {_REMINDER_COLUMNS} FROM reminders WHERE task_uid=? ORDER BY fire_at_ts, id",
            (uid,),
        )

    async def for_chat(self, chat_id: int, kind: ReminderKind) -> list[Reminder]:
        return await self._rows(
            f"SELECT {_REMINDER_COLUMNS} FROM reminders WHERE task_uid='' AND chat_id=? "
            "AND kind=? ORDER BY fire_at_ts, id",
            (chat_id, kind.value),
        )

    # -- users and chats ----------------------------------------------------------------------

    async def user_row(self, user_id: int) -> tuple[str | None, str | None, str | None, int | None]:
        async with self._store.db.execute(
            "SELECT tz, lang, remind_offsets, digest_hour FROM users WHERE user_id=?", (user_id,)
        ) as cur:
            row = await cur.fetchone()
        if row is None:
            return None, None, None, None
        return row[0], row[1], row[2], row[3]

    async def set_offsets(self, user_id: int, offsets: Sequence[Offset]) -> None:
        stamp = utcnow().isoformat()
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO users (user_id, remind_offsets, updated_at) VALUES (?,?,?) "
                "ON CONFLICT (user_id) DO UPDATE SET remind_offsets=excluded.remind_offsets, "
                "updated_at=excluded.updated_at",
                (user_id, offsets_text(offsets), stamp),
            )

    async def set_chat_active(self, chat_id: int, active: bool) -> None:
        """Remember whether the bot may write to a chat (False after a 403)."""
        kind = "private" if chat_id > 0 else "group"
        async with self._tx() as db:
            await db.execute(
                "INSERT INTO chats (chat_id, active, kind, updated_at) VALUES (?,?,?,?) "
                "ON CONFLICT (chat_id) DO UPDATE SET active=excluded.active, "
                "updated_at=excluded.updated_at",
                (chat_id, int(active), kind, utcnow().isoformat()),
            )

    async def inactive_chats(self) -> set[int]:
        # LIMIT: loads every inactive chat id at start (8 bytes plus set overhead each); a
        # bot blocked by millions would want a bloom filter or a per-send lookup instead.
        async with self._store.db.execute("SELECT chat_id FROM chats WHERE active=0") as cur:
            return {int(r[0]) for r in await cur.fetchall()}


class ReminderService:
    """Keeps reminders in step with tasks and sends them when due; owns no clock of its own."""

    def __init__(
        self,
        orch: EnterpriseTaskOrchestrator,
        sender: NoticeSender | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.orch = orch
        self.sender = sender
        self.store = SqliteReminderStore(orch.store)
        self._clock = clock
        # Tells this process's claims from a dead one's (see the module contract).
        self.boot = uuid.uuid4().hex
        self._inflight: set[asyncio.Task[None]] = set()
        self._stopping = False
        self._last_purge: datetime | None = None

    def now(self) -> datetime:
        return self._clock()

    async def start(self) -> None:
        """Follow task changes and take back what a crashed process left half-sent."""
        orphans = await self.store.release_orphans(self.boot)
        if orphans:
            log.warning("reminder.orphans_released", extra={"count": orphans})
        if self.on_change not in self.orch.change_listeners:
            self.orch.change_listeners.append(self.on_change)
        self.orch.successor_planner = self.plan_successor
        self._stopping = False

    def stop(self) -> None:
        """Claim nothing more; notices already handed over settle in `close()`."""
        self._stopping = True

    async def close(self) -> None:
        """Wait for handed-over notices to settle (the sender must finish or cancel them)."""
        self.stop()
        with contextlib.suppress(ValueError):
            self.orch.change_listeners.remove(self.on_change)
        if self.orch.successor_planner == self.plan_successor:
            self.orch.successor_planner = None
        await self.wait_idle()

    async def wait_idle(self) -> None:
        """Return once every claimed notice has its outcome recorded."""
        while self._inflight:
            await asyncio.gather(*set(self._inflight), return_exceptions=True)

    # -- settings -----------------------------------------------------------------------------

    async def settings_for(self, user_id: int) -> ReminderSettings:
        tz_name, lang, offsets, hour = await self.store.user_row(user_id)
        tz = self.orch.tz
        if tz_name:
            try:
                tz = ZoneInfo(tz_name)
            except (KeyError, ValueError):
                log.warning("reminder.bad_zone", extra={"user_id": user_id})
        parsed = DEFAULT_OFFSETS
        if offsets is not None:
            try:
                parsed = parse_offsets(offsets)
            except InputError:
                log.warning("reminder.bad_offsets", extra={"user_id": user_id})
        return ReminderSettings(
            user_id=user_id,
            tz=tz,
            lang=lang,
            offsets=parsed,
            digest_hour=hour if hour is not None and 0 <= hour <= 23 else DEFAULT_DIGEST_HOUR,
        )

    async def set_offsets(self, user_id: int, offsets: Sequence[Offset], *, chat_id: int) -> int:
        """Save the user's offsets and move the reminders of their open tasks in this chat."""
        await self.store.set_offsets(user_id, offsets)
        moved, offset = 0, 0
        while page := await self.orch.list_tasks(chat_id, limit=RESCHEDULE_PAGE, offset=offset):
            offset += len(page)
            for task in page:
                if task.deadline is not None and _owner(task) == user_id:
                    await self._schedule(task)
                    moved += 1
        return moved

    # -- following task changes ---------------------------------------------------------------

    async def on_change(self, task: Task, op: Operation) -> None:
        """Change listener: runs after every committed change of a task."""
        if task.chat_id == 0:
            return  # created through the API with no chat: nobody to remind
        if op in (Operation.COMPLETE, Operation.DELETE) or task.status is not TaskStatus.OPEN:
            await self.store.cancel_task(task.uid)
            return
        await self._schedule(task)

    async def _schedule(self, task: Task) -> None:
        if task.deadline is None:
            await self.store.replace_deadline(task.uid, task.chat_id, keep=(), add=())
            return
        now = self.now()
        settings = await self.settings_for(_owner(task))
        moments = [*(o.before(task.deadline, settings.tz) for o in settings.offsets), task.deadline]
        # Rows of this deadline stay even when already due (a missed one must still go out);
        # only future moments are added, so a task due in 30 min gets no "1 h before".
        await self.store.replace_deadline(
            task.uid,
            task.chat_id,
            keep={_ts(m) for m in moments},
            add={_ts(m) for m in moments if m > now},
        )
        chat = await self.settings_for(task.chat_id)
        await self.store.ensure_digest(task.chat_id, _ts(chat.morning_after(task.deadline)))

    async def plan_successor(self, task: Task) -> TaskDraft | None:
        """The next occurrence of a recurring task being completed (the orchestrator saves it)."""
        assert task.recurrence is not None
        try:
            rule = Recurrence.from_text(task.recurrence)
        except ValueError:
            log.error("reminder.bad_recurrence", extra={"task_uid": task.uid})
            return None
        settings = await self.settings_for(_owner(task))
        now = self.now()
        after = max(task.deadline, now) if task.deadline else now
        return TaskDraft(
            title=task.title,
            description=task.description,
            priority=task.priority,
            deadline=rule.next_after(after, settings.tz),
            tags=task.tags,
            chat_id=task.chat_id,
            author_id=task.author_id,
            assignee=task.assignee,
            recurrence=task.recurrence,
        )

    async def snooze(self, task: Task, choice: str) -> datetime:
        """Remind again after 15 min ('s15'), 1 h ('s60') or tomorrow morning ('tmr')."""
        now = self.now()
        if choice in SNOOZES:
            until = now + SNOOZES[choice]
        elif choice == "tmr":
            settings = await self.settings_for(_owner(task))
            tomorrow = now.astimezone(settings.tz).date() + timedelta(days=1)
            until = _wall(tomorrow, settings.digest_hour, settings.tz)
        else:
            raise InputError(f"unknown snooze {choice!r}", code="bad_state")
        await self.store.snooze(task.uid, task.chat_id, _ts(until))
        log.info("reminder.snoozed", extra={"task_uid": task.uid, "until": until.isoformat()})
        return until

    # -- the loop -----------------------------------------------------------------------------

    async def tick(self, now: datetime | None = None) -> int:
        """Hand every due reminder to the sender; returns how many rows were claimed.

        Idempotent and cheap when idle (one index probe), so the scheduler may run it late,
        twice, or after a long pause: a claim happens once, and lateness is judged per row.
        """
        now = now or self.now()
        now_ts = math.floor(now.timestamp())
        room = MAX_INFLIGHT - len(self._inflight)
        if self._stopping or self.sender is None or room <= 0:
            return 0
        await self._maybe_purge(now)
        if not await self.store.any_due(now_ts):
            return 0
        rows = await self.store.claim_due(now_ts, self.boot, min(room, TICK_BATCH))
        groups: dict[tuple[str, int], list[Reminder]] = {}
        for row in rows:
            groups.setdefault((row.task_uid, row.chat_id), []).append(row)
        for group in groups.values():
            self._spawn(self._deliver(tuple(group), now))
        return len(rows)

    def _spawn(self, work: Awaitable[None]) -> None:
        task = asyncio.ensure_future(work)
        self._inflight.add(task)
        task.add_done_callback(self._inflight.discard)

    async def _deliver(self, rows: tuple[Reminder, ...], now: datetime) -> None:
        ids = [r.id for r in rows]
        latest = rows[-1]  # rows come sorted by time; the latest speaks for all of them
        try:
            notice = await self._notice(latest, rows, now)
            if notice is None:
                await self.store.settle(ids, ReminderState.CANCELLED)
            else:
                assert self.sender is not None
                outcome = await self.sender.send_notice(notice)
                await self._record(notice, outcome)
                if outcome is DeliveryOutcome.CANCELLED:
                    return  # the row is pending again and keeps its place as the digest
            if latest.kind is ReminderKind.DIGEST:
                await self._next_digest(latest.chat_id, now)
        except Exception:
            # Settled as failed, not pending: a bug here must not resend every second.
            log.exception("reminder.crashed", extra={"reminders": ids})
            with contextlib.suppress(StorageError):
                await self.store.settle(ids, ReminderState.FAILED)

    async def _notice(
        self, latest: Reminder, rows: tuple[Reminder, ...], now: datetime
    ) -> Notice | None:
        """What to say for a group of due rows, or None when there is nothing to say any more."""
        if latest.kind is ReminderKind.DIGEST:
            overdue = await self._overdue(latest.chat_id, now)
            if not overdue:
                return None
            return Notice(
                reminders=rows,
                chat_id=latest.chat_id,
                kind=ReminderKind.DIGEST,
                fire_at=latest.fire_at,
                late=latest.late,
                settings=await self.settings_for(latest.chat_id),
                overdue=tuple(overdue),
            )
        try:
            task = await self.orch.store.get_by_uid(latest.task_uid)
        except TaskNotFound:
            return None
        if task.status is not TaskStatus.OPEN:
            return None
        return Notice(
            reminders=rows,
            chat_id=latest.chat_id,
            kind=latest.kind,
            fire_at=latest.fire_at,
            late=latest.late,
            settings=await self.settings_for(_owner(task)),
            task=task,
        )

    async def _overdue(self, chat_id: int, now: datetime) -> list[Task]:
        # Sorted by deadline with undated last, so the overdue ones are the first rows.
        tasks = await self.orch.store.list_tasks(chat_id, limit=DIGEST_MAX_TASKS + 1)
        return [t for t in tasks if t.deadline is not None and t.deadline < now]

    async def _next_digest(self, chat_id: int, now: datetime) -> None:
        """Tomorrow's digest if the chat still has a dated open task (soonest comes first)."""
        soonest = await self.orch.store.list_tasks(chat_id, limit=1)
        if soonest and soonest[0].deadline is not None:
            settings = await self.settings_for(chat_id)
            after = max(soonest[0].deadline, now)
            await self.store.ensure_digest(chat_id, _ts(settings.morning_after(after)))

    async def _record(self, notice: Notice, outcome: DeliveryOutcome) -> None:
        ids = [r.id for r in notice.reminders]
        if outcome is DeliveryOutcome.CANCELLED:
            await self.store.settle(ids, ReminderState.PENDING)
            return
        if outcome is not DeliveryOutcome.SENT:
            await self.store.settle(ids, ReminderState.FAILED)
            log.warning(
                "reminder.failed",
                extra={"chat_id": notice.chat_id, "reminders": ids, "outcome": outcome.value},
            )
            return
        sent_at = self.now()
        await self.store.settle(ids, ReminderState.SENT, sent_at=sent_at)
        log.info(
            "reminder.late" if notice.late else "reminder.sent",
            extra={
                "chat_id": notice.chat_id,
                "task_uid": notice.task.uid if notice.task else None,
                "kind": notice.kind.value,
                "reminders": len(ids),
                "delay_ms": round((sent_at - notice.fire_at).total_seconds() * 1000),
            },
        )

    async def _maybe_purge(self, now: datetime) -> None:
        if self._last_purge is not None and (now - self._last_purge).total_seconds() < (
            PURGE_EVERY_S
        ):
            return
        self._last_purge = now
        purged = await self.store.purge(_ts(now) - RETENTION_S)
        if purged:
            log.info("reminder.purged", extra={"count": purged})


def _owner(task: Task) -> int:
    """Whose settings a task's reminders follow: its author, else the (private) chat."""
    return task.author_id if task.author_id is not None else task.chat_id
