"""A store of N tasks written in bulk: the shape a long-lived deployment grows into.

The schema comes from `SqliteTaskStore.open()` (every migration), then rows go in with
`executemany` in one transaction, with `synchronous=OFF` for the build only. Shape, chosen
to look like months of use, not like a best case:
- chats: ~10k; 90 % of tasks spread evenly, 10 % on 100 busy chats (a team, a power user);
- status: 20 % open, 75 % done, 5 % deleted; 60 % have a deadline (open ones mostly
  ahead, one in ten overdue; done ones behind);
- outbox: one done CREATE row per enabled server per task, one done COMPLETE row per server per
  done task (the outbox is never purged); links: one per server per task;
- reminders: two pending per open task with a deadline ahead (1 h before, at it), one
  pending digest per chat, and a `sent` row for one done task in ten.
No reminder is due at build time, none falls due within `QUIET_S` after it, and `ANALYZE`
is not run (a deployment never runs it either), so the query plans are the real ones.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from core.store import SqliteTaskStore

CHATS = 10_000
BUSY_CHATS = 100
BUSY_SHARE = 0.10
QUIET_S = 6 * 3600  # no reminder falls due this soon after the build
DAY = 86_400
BATCH = 50_000  # rows per executemany; bounds the memory of one generated batch


@dataclass(frozen=True)
class Filled:
    """What was written, and which chats to ask about."""

    tasks: int
    rows: dict[str, int]
    seconds: float
    bytes: int
    typical_chats: list[int]
    busy_chats: list[int]
    open_task_uids: list[str]  # a few, for reminders that fall due on purpose


def chat_of(i: int, rng: random.Random) -> int:
    if rng.random() < BUSY_SHARE:
        return 1 + rng.randrange(BUSY_CHATS)
    return 1 + BUSY_CHATS + rng.randrange(CHATS - BUSY_CHATS)


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def _tasks(n: int, now: float, seed: int) -> Iterator[tuple[object, ...]]:
    """Task rows in id order; uid is the id in hex, deadlines and status as the docstring says."""
    rng = random.Random(seed)
    for i in range(1, n + 1):
        roll = rng.random()
        status = "open" if roll < 0.20 else "done" if roll < 0.95 else "deleted"
        created = now - rng.uniform(1, 365) * DAY
        deadline: float | None = None
        if rng.random() < 0.6:
            if status == "open" and rng.random() < 0.9:
                deadline = now + QUIET_S + 3600 + rng.uniform(0, 60) * DAY
            else:
                deadline = now - rng.uniform(1, 120) * DAY
        chat = chat_of(i, rng)
        tags = json.dumps(["work", f"project{i % 40}"][: 1 + i % 2])
        yield (
            i,
            f"{i:032x}",
            f"Follow up with the vendor about invoice {i}",
            "Check the amounts against the purchase order and reply by mail.",
            1 + i % 5,
            None if deadline is None else _iso(deadline),
            None if deadline is None else int(deadline),
            tags,
            status,
            chat,
            chat,
            _iso(created),
            _iso(created + 3600),
        )


def _batches(rows: Iterator[tuple[object, ...]]) -> Iterator[list[tuple[object, ...]]]:
    batch: list[tuple[object, ...]] = []
    for row in rows:
        batch.append(row)
        if len(batch) >= BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def _insert_tasks(
    db: sqlite3.Connection, n: int, now: float, seed: int, servers: Sequence[str]
) -> dict[str, int]:
    """Tasks and, in the same pass, their outbox rows, links and reminders."""
    counts = {"tasks": 0, "outbox": 0, "links": 0, "reminders": 0}
    for batch in _batches(_tasks(n, now, seed)):
        db.executemany(
            "INSERT INTO tasks (id, uid, title, description, priority, deadline, deadline_ts, "
            "tags, status, chat_id, author_id, created_at, updated_at, version) "
            "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,1)",
            batch,
        )
        outbox: list[tuple[object, ...]] = []
        links: list[tuple[object, ...]] = []
        reminders: list[tuple[object, ...]] = []
        for row in batch:
            uid, status, chat, stamp = str(row[1]), row[8], row[9], row[12]
            for server in servers:
                outbox.append((uid, server, "create", 1, "done", 1, stamp, stamp))
                if status == "done":
                    outbox.append((uid, server, "complete", 2, "done", 1, stamp, stamp))
                links.append((uid, server, f"{server}-{row[0]}"))
            ts = row[6]
            if status == "open" and isinstance(ts, int) and ts > now:
                reminders += [
                    (uid, chat, "deadline", fire, "pending", None, stamp, stamp)
                    for fire in (ts - 3600, ts)
                ]
            elif status == "done" and int(str(row[0])) % 10 == 0:
                fire = int(now - (int(str(row[0])) % 29 + 1) * DAY)
                reminders.append((uid, chat, "deadline", fire, "sent", stamp, stamp, stamp))
        db.executemany(
            "INSERT INTO outbox (task_uid, server, op, seq, state, attempts, created_at, "
            "updated_at) VALUES (?,?,?,?,?,?,?,?)",
            outbox,
        )
        db.executemany("INSERT INTO links VALUES (?,?,?)", links)
        db.executemany(
            "INSERT INTO reminders (task_uid, chat_id, kind, fire_at_ts, state, sent_at, "
            "created_at, updated_at) VALUES (?,?,?,?,?,?,?,?)",
            reminders,
        )
        counts["tasks"] += len(batch)
        counts["outbox"] += len(outbox)
        counts["links"] += len(links)
        counts["reminders"] += len(reminders)
    return counts


def _insert_digests(db: sqlite3.Connection, now: float) -> int:
    stamp = _iso(now)
    rows = [
        ("", chat, "digest", int(now) + QUIET_S + chat % DAY, "pending", stamp, stamp)
        for chat in range(1, CHATS + 1)
    ]
    db.executemany(
        "INSERT INTO reminders (task_uid, chat_id, kind, fire_at_ts, state, created_at, "
        "updated_at) VALUES (?,?,?,?,?,?,?)",
        rows,
    )
    return len(rows)


async def fill(path: Path, n: int, servers: Sequence[str], *, seed: int = 7) -> Filled:
    """Create the store at `path` with every migration, then write `n` tasks in bulk."""
    store = SqliteTaskStore(path)
    await store.open()
    await store.close()
    began = time.perf_counter()
    now = time.time()
    db = sqlite3.connect(path, isolation_level=None)
    try:
        db.execute("PRAGMA synchronous=OFF")  # the build only; the store opens with NORMAL
        db.execute("PRAGMA cache_size=-262144")  # 256 MiB while building the indexes
        db.execute("BEGIN")
        rows = _insert_tasks(db, n, now, seed, servers)
        rows["reminders"] += _insert_digests(db, now)
        db.execute("COMMIT")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        typical, busy, uids = _samples(db)
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        size = pages * db.execute("PRAGMA page_size").fetchone()[0]
    finally:
        db.close()
    return Filled(
        tasks=n,
        rows=rows,
        seconds=time.perf_counter() - began,
        bytes=size,
        typical_chats=typical,
        busy_chats=busy,
        open_task_uids=uids,
    )


def _samples(db: sqlite3.Connection) -> tuple[list[int], list[int], list[str]]:
    rng = random.Random(11)
    typical = rng.sample(range(1 + BUSY_CHATS, CHATS + 1), 500)
    busy = list(range(1, BUSY_CHATS + 1))
    uids = [str(r[0]) for r in db.execute("SELECT uid FROM tasks WHERE status='open' LIMIT 50")]
    return typical, busy, uids


def describe(filled: Filled) -> dict[str, object]:
    return {
        "tasks": filled.tasks,
        "rows": filled.rows,
        "build_s": round(filled.seconds, 1),
        "file_mib": round(filled.bytes / 2**20, 1),
    }


def sample(values: Sequence[int], k: int, seed: int) -> list[int]:
    """A repeatable sample (with replacement) of chats to ask about."""
    rng = random.Random(seed)
    return [rng.choice(values) for _ in range(k)]
