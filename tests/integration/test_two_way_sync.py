"""Two-way sync with deltatask: what another client changes there comes back, newest wins.

A real orchestrator with a real store, the real deltatask server and the real filesystem
server; "another client" is a call to deltatask's own tools on the same server process.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from core.models import Operation, OutboxState, Task, TaskStatus
from core.orchestrator import EnterpriseTaskOrchestrator
from core.settings import SERVER_NAMES, load_config
from integrations import DeltaTaskIntegration

pytestmark = [pytest.mark.timeout(120), pytest.mark.usefixtures("no_leaked_children")]

ENABLED = {"deltatask", "filesystem"}


@pytest_asyncio.fixture
async def orch(tmp_path: Path) -> AsyncIterator[EnterpriseTaskOrchestrator]:
    config = load_config().with_servers(**{n: {"enabled": n in ENABLED} for n in SERVER_NAMES})
    async with EnterpriseTaskOrchestrator(config=config, data_dir=tmp_path) as orchestrator:
        yield orchestrator


def deltatask(orch: EnterpriseTaskOrchestrator) -> DeltaTaskIntegration:
    integration = orch.integration("deltatask")
    assert isinstance(integration, DeltaTaskIntegration)
    return integration


async def synced(orch: EnterpriseTaskOrchestrator, title: str, **fields: Any) -> Task:
    task = await orch.create_task(title, **fields)
    states = await orch.wait_synced(task.uid, within=20)
    assert set(states.values()) == {OutboxState.DONE}
    return task


async def edit_in_deltatask(orch: EnterpriseTaskOrchestrator, uid: str, **updates: Any) -> None:
    """What a DeltaTask user does to the copy: change it with the server's own tool."""
    twin = deltatask(orch)
    task_id = await twin.find_by_ref(uid)
    assert task_id is not None
    await twin.handle.call("update_task", {"task_id": task_id, "updates": updates}, timeout=10)


async def edit_unsent(orch: EnterpriseTaskOrchestrator, task: Task, **fields: Any) -> Task:
    """A local change whose fan-out has not run yet (the bot crashed right after replying)."""
    return await orch.store.change_task(task, Operation.UPDATE, servers=orch.integrations, **fields)


def file_of(orch: EnterpriseTaskOrchestrator, task: Task) -> str:
    data_dir = orch.data_dir / "servers" / "filesystem"
    (path,) = [p for p in data_dir.rglob(f"*{task.uid}*.md") if ".trash" not in p.parts]
    return path.read_text()


async def test_an_edit_made_in_deltatask_shows_up_here_and_reaches_the_other_servers(
    orch: EnterpriseTaskOrchestrator,
) -> None:
    task = await synced(orch, "Pay rent", priority=3, tags=["home"])

    await edit_in_deltatask(
        orch,
        task.uid,
        title="Pay rent and water",
        urgency=5,
        deadline="2026-12-20T18:00:00+00:00",
        tags=["home", "bills"],
    )
    await orch.sync()  # the scheduler's job: reads deltatask's changes, then drains
    await orch.wait_synced(task.uid, within=20)

    now = await orch.get_task(task.id)
    assert (now.title, now.priority, now.tags) == ("Pay rent and water", 1, ("home", "bills"))
    assert now.deadline == datetime(2026, 12, 20, 18, 0, tzinfo=UTC)
    assert "# Pay rent and water" in file_of(orch, now)
    rows = await orch.store.outbox_for_task(task.uid)
    assert [r.server for r in rows if r.op is Operation.UPDATE] == ["filesystem"]
    assert await orch.pull() == 0  # read once: a second run finds nothing new


async def test_finishing_and_deleting_in_deltatask_finish_and_delete_here(
    orch: EnterpriseTaskOrchestrator,
) -> None:
    finished = await synced(orch, "Buy milk")
    deleted = await synced(orch, "Old idea")
    twin = deltatask(orch)

    await twin.finish_task(str(await twin.find_by_ref(finished.uid)))
    await twin.delete_task(str(await twin.find_by_ref(deleted.uid)))
    assert await orch.pull() == 2

    assert (await orch.store.get_by_uid(finished.uid)).status is TaskStatus.DONE
    assert (await orch.store.get_by_uid(deleted.uid)).status is TaskStatus.DELETED
    await orch.wait_synced(deleted.uid, within=20)
    trash = orch.data_dir / "servers" / "filesystem"
    assert [p.parent.name for p in trash.rglob(f"*{deleted.uid}*")] == [".trash"]


async def test_a_remote_edit_newer_than_an_unsent_local_one_wins_and_both_are_kept(
    orch: EnterpriseTaskOrchestrator, caplog: pytest.LogCaptureFixture
) -> None:
    task = await synced(orch, "Call the plumber")
    await edit_unsent(orch, task, title="Call the plumber (ours)")
    await edit_in_deltatask(orch, task.uid, title="Call the plumber (theirs)")

    with caplog.at_level(logging.WARNING, logger="taskbot.orchestrator"):
        assert await orch.pull() == 1
    await orch.sync()
    await orch.wait_synced(task.uid, within=20)

    assert (await orch.get_task(task.id)).title == "Call the plumber (theirs)"
    twin = await deltatask(orch).get_task(str(await deltatask(orch).find_by_ref(task.uid)))
    assert twin["title"] == "Call the plumber (theirs)"
    (conflict,) = await orch.store.conflicts(task.uid)
    assert conflict["winner"] == "deltatask"
    assert conflict["local"]["title"] == "Call the plumber (ours)"
    assert conflict["remote"]["title"] == "Call the plumber (theirs)"
    (record,) = [r for r in caplog.records if r.getMessage() == "sync.conflict"]
    assert record.winner == "deltatask"  # type: ignore[attr-defined]
    assert record.fields == ["title"]  # type: ignore[attr-defined]
    assert "plumber" not in repr(record.__dict__)  # task text stays out of the logs


async def test_a_local_edit_newer_than_the_remote_one_wins_and_is_pushed_over_it(
    orch: EnterpriseTaskOrchestrator,
) -> None:
    task = await synced(orch, "Book flights")
    await edit_in_deltatask(orch, task.uid, title="Book flights (theirs)", completed=True)
    await edit_unsent(orch, task, title="Book flights (ours)")

    assert await orch.pull() == 0
    await orch.sync()
    await orch.wait_synced(task.uid, within=20)

    assert (await orch.get_task(task.id)).title == "Book flights (ours)"
    assert (await orch.get_task(task.id)).status is TaskStatus.OPEN
    twin = await deltatask(orch).get_task(str(await deltatask(orch).find_by_ref(task.uid)))
    assert (twin["title"], twin["completed"]) == ("Book flights (ours)", False)
    (conflict,) = await orch.store.conflicts(task.uid)
    assert conflict["winner"] == "local"
    assert conflict["remote"]["status"] == "done"
    assert await orch.pull() == 0
    assert len(await orch.store.conflicts(task.uid)) == 1  # our push read back is no conflict


async def test_a_copy_deleted_in_deltatask_before_a_local_edit_is_made_again(
    orch: EnterpriseTaskOrchestrator,
) -> None:
    task = await synced(orch, "Renew passport")
    twin = deltatask(orch)
    await twin.delete_task(str(await twin.find_by_ref(task.uid)))
    await orch.update_task(task.id, title="Renew passport and ID")
    await orch.wait_synced(task.uid, within=20)

    await orch.pull()
    await orch.wait_synced(task.uid, within=20)

    assert (await orch.get_task(task.id)).status is TaskStatus.OPEN
    again = await twin.find_by_ref(task.uid)
    assert again is not None
    assert (await twin.get_task(again))["title"] == "Renew passport and ID"


async def test_reading_back_resumes_where_it_stopped_after_a_restart(tmp_path: Path) -> None:
    config = load_config().with_servers(**{n: {"enabled": n in ENABLED} for n in SERVER_NAMES})
    async with EnterpriseTaskOrchestrator(config=config, data_dir=tmp_path) as first:
        task = await synced(first, "Water the plants")
        await first.pull()
        await edit_in_deltatask(first, task.uid, title="Water the plants twice")

    async with EnterpriseTaskOrchestrator(config=config, data_dir=tmp_path) as second:
        # nobody calls pull(): the sync that every start runs in the background reads it
        for _ in range(200):
            if (await second.get_task(task.id)).title != "Water the plants":
                break
            await asyncio.sleep(0.05)
        assert (await second.get_task(task.id)).title == "Water the plants twice"
        assert await second.pull() == 0
        assert await second.store.sync_cursor("deltatask") is not None
