"""The SQLite store on a real file: atomic writes, migrations, ordering, paging."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.errors import StorageError, TaskNotFound
from core.models import Operation, OutboxState, TaskDraft, TaskStatus
from core.store import MIGRATIONS, SqliteTaskStore

SERVERS = ("deltatask", "memory", "git")


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[SqliteTaskStore]:
    async with SqliteTaskStore(tmp_path / "taskbot.db") as opened:
        yield opened


async def test_a_new_task_and_one_outbox_row_per_server_are_written_together(
    store: SqliteTaskStore,
) -> None:
    task = await store.create_task(
        TaskDraft(title="Pay rent", tags=("home",), chat_id=7), uid="u1", servers=SERVERS
    )
    assert task.id == 1
    assert (await store.get_task(1)).title == "Pay rent"
    rows = await store.pending_for_task("u1")
    assert sorted(r.server for r in rows) == sorted(SERVERS)
    assert {r.op for r in rows} == {Operation.CREATE}


async def test_a_failed_write_leaves_neither_task_nor_outbox_rows(store: SqliteTaskStore) -> None:
    await store.create_task(TaskDraft(title="first"), uid="same", servers=SERVERS)
    with pytest.raises(StorageError):
        await store.create_task(TaskDraft(title="dup uid"), uid="same", servers=SERVERS)
    assert await store.count_tasks() == 1
    assert sum((await store.outbox_depth()).values()) == len(SERVERS)


async def test_reopening_keeps_data_and_does_not_rerun_migrations(tmp_path: Path) -> None:
    path = tmp_path / "taskbot.db"
    async with SqliteTaskStore(path) as first:
        await first.create_task(TaskDraft(title="kept"), uid="u", servers=())
    async with SqliteTaskStore(path) as second:
        assert await second.schema_version() == len(MIGRATIONS)
        assert (await second.get_by_uid("u")).title == "kept"
    with sqlite3.connect(path) as raw:
        assert raw.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


async def test_a_change_bumps_the_version_and_queues_its_op_after_the_create(
    store: SqliteTaskStore,
) -> None:
    task = await store.create_task(TaskDraft(title="t"), uid="u", servers=SERVERS)
    done = await store.change_task(
        task, Operation.COMPLETE, servers=SERVERS, status=TaskStatus.DONE
    )
    assert done.version == 2
    assert (await store.get_task(task.id)).status is TaskStatus.DONE
    ops = [(r.op, r.seq) for r in await store.pending_for_task("u") if r.server == "git"]
    assert ops == [(Operation.CREATE, 1), (Operation.COMPLETE, 2)]


async def test_a_change_based_on_a_stale_copy_is_refused(store: SqliteTaskStore) -> None:
    task = await store.create_task(TaskDraft(title="t"), uid="u", servers=())
    await store.change_task(task, Operation.UPDATE, servers=(), title="new")
    with pytest.raises(StorageError, match="changed meanwhile"):
        await store.change_task(task, Operation.UPDATE, servers=(), title="lost update")
    assert (await store.get_task(task.id)).title == "new"


async def test_list_shows_one_chat_soonest_deadline_first_and_undated_last(
    store: SqliteTaskStore,
) -> None:
    now = datetime(2026, 12, 4, 12, tzinfo=UTC)
    for uid, title, days in [("a", "later", 3), ("b", "undated", None), ("c", "soon", 1)]:
        deadline = None if days is None else now + timedelta(days=days)
        await store.create_task(
            TaskDraft(title=title, deadline=deadline, chat_id=1), uid=uid, servers=()
        )
    await store.create_task(TaskDraft(title="other chat", chat_id=2), uid="d", servers=())
    titles = [t.title for t in await store.list_tasks(1)]
    assert titles == ["soon", "later", "undated"]
    assert (await store.get_task(1)).deadline == now + timedelta(days=3)


async def test_pending_tasks_page_in_creation_order(store: SqliteTaskStore) -> None:
    for i in range(5):
        await store.create_task(TaskDraft(title=f"t{i}"), uid=f"u{i}", servers=("git",))
    first = await store.pending_task_uids(limit=2)
    second = await store.pending_task_uids(after=first[-1][1], limit=10)
    assert [u for u, _ in first + second] == [f"u{i}" for i in range(5)]


async def test_finishing_a_row_records_the_remote_id(store: SqliteTaskStore) -> None:
    await store.create_task(TaskDraft(title="t"), uid="u", servers=("deltatask",))
    (row,) = await store.pending_for_task("u")
    await store.finish_outbox(row.id, OutboxState.DONE, external=("u", "deltatask", "ext-1"))
    assert await store.links("u") == {"deltatask": "ext-1"}
    assert await store.pending_for_task("u") == []


async def test_compensation_fails_the_task_cancels_rows_and_queues_undo(
    store: SqliteTaskStore,
) -> None:
    await store.create_task(TaskDraft(title="t"), uid="u", servers=SERVERS)
    await store.compensate("u", ["memory"])
    assert (await store.get_by_uid("u")).status is TaskStatus.FAILED
    pending = await store.pending_for_task("u")
    assert [(r.server, r.op) for r in pending] == [("memory", Operation.UNDO)]


async def test_an_unknown_task_is_not_found(store: SqliteTaskStore) -> None:
    with pytest.raises(TaskNotFound):
        await store.get_task(99)


async def test_completing_a_recurring_task_writes_its_next_occurrence_in_the_same_transaction(
    store: SqliteTaskStore,
) -> None:
    rule = "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0"
    task = await store.create_task(
        TaskDraft(title="Standup", recurrence=rule), uid="u1", servers=SERVERS
    )
    nxt = TaskDraft(title="Standup", recurrence=rule, deadline=datetime(2026, 12, 7, 9, tzinfo=UTC))

    done, successor = await store.complete_recurring(
        task, nxt, successor_uid="u2", servers=SERVERS, successor_servers=SERVERS
    )

    assert (await store.get_by_uid("u1")).status is TaskStatus.DONE
    assert (await store.get_by_uid("u2")).deadline == nxt.deadline
    assert (done.status, successor.uid, successor.recurrence) == (TaskStatus.DONE, "u2", rule)
    assert {r.op for r in await store.pending_for_task("u2")} == {Operation.CREATE}


async def test_a_next_occurrence_that_cannot_be_saved_leaves_the_task_open(
    store: SqliteTaskStore,
) -> None:
    rule = "FREQ=DAILY;BYHOUR=9;BYMINUTE=0"
    task = await store.create_task(
        TaskDraft(title="Water plants", recurrence=rule), uid="u1", servers=SERVERS
    )
    await store.create_task(TaskDraft(title="taken"), uid="u2", servers=())

    with pytest.raises(StorageError):
        await store.complete_recurring(
            task,
            TaskDraft(title="Water plants", recurrence=rule),
            successor_uid="u2",  # collides: the insert fails after the completion ran
            servers=SERVERS,
            successor_servers=SERVERS,
        )

    assert (await store.get_by_uid("u1")).status is TaskStatus.OPEN
    assert {r.op for r in await store.pending_for_task("u1")} == {Operation.CREATE}


async def test_a_dialog_keeps_state_and_data_apart_and_leaves_no_row_once_cleared(
    store: SqliteTaskStore,
) -> None:
    await store.set_dialog("1:7:7", state="NewTask:title")
    await store.set_dialog("1:7:7", data={"title": "Buy bread", "prompt": 41})
    assert await store.dialog("1:7:7") == ("NewTask:title", {"title": "Buy bread", "prompt": 41})

    await store.set_dialog("1:7:7", state=None)
    assert await store.dialog("1:7:7") == (None, {"title": "Buy bread", "prompt": 41})
    await store.set_dialog("1:7:7", data={})
    assert await store.forget_dialogs(older_than=datetime.now(UTC) + timedelta(days=1)) == 0


async def test_abandoned_dialogs_are_forgotten(store: SqliteTaskStore) -> None:
    await store.set_dialog("1:7:7", state="NewTask:deadline")

    assert await store.forget_dialogs(older_than=datetime.now(UTC) - timedelta(hours=1)) == 0
    assert await store.forget_dialogs(older_than=datetime.now(UTC) + timedelta(seconds=1)) == 1
    assert await store.dialog("1:7:7") == (None, {})


@pytest.mark.parametrize("steps", range(6))
async def test_a_write_cancelled_part_way_leaves_the_store_writable(
    store: SqliteTaskStore, steps: int
) -> None:
    """Regression: a cancel during BEGIN left the transaction open; every later write failed."""
    cancelled = asyncio.ensure_future(
        store.create_task(TaskDraft(title="cancelled"), uid="gone", servers=SERVERS)
    )
    for _ in range(steps):  # land the cancel at a different await each time
        await asyncio.sleep(0)
    cancelled.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await cancelled

    await store.create_task(TaskDraft(title="after"), uid="kept", servers=SERVERS)

    assert (await store.get_by_uid("kept")).title == "after"
    assert await store.count_tasks() in (1, 2)  # the cancelled one is whole or absent
    assert sum((await store.outbox_depth()).values()) == len(SERVERS) * await store.count_tasks()
