"""The deltatask server, driven as a real process: DeltaTask's contract plus idempotent create."""

from __future__ import annotations

import sqlite3
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import pytest_asyncio

from .conftest import PROJECT_ROOT, ToolClient, open_server, shared_server

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(60)]

DELTATASK_TOOLS = {
    "get_task_by_id",
    "search_tasks",
    "create_task",
    "update_task",
    "delete_task",
    "sync_tasks",
    "list_tasks",
    "get_statistics",
    "create_subtasks",
    "get_all_tags",
    "get_subtasks",
    "finish_task",
}
TASK_KEYS = {
    "id",
    "title",
    "description",
    "created",
    "updated",
    "deadline",
    "urgency",
    "effort",
    "completed",
    "parent_id",
    "tags",
    "external_ref",
}


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def deltatask(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ToolClient]:
    home = tmp_path_factory.mktemp("deltatask")
    async with shared_server("deltatask", {"DELTATASK_HOME": str(home)}, home) as client:
        yield client


async def test_server_offers_the_deltatask_tools_with_their_original_arguments(
    deltatask: ToolClient,
) -> None:
    tools = {tool.name: tool for tool in (await deltatask.session.list_tools()).tools}

    assert DELTATASK_TOOLS | {"find_by_ref", "list_changes"} == set(tools)
    create = tools["create_task"].input_schema
    assert create["required"] == ["title"]
    assert create["properties"]["tags"]["default"] == []
    assert create["properties"]["effort"]["default"] == 1
    assert tools["list_tasks"].input_schema["properties"]["tags"]["type"] == "array"
    assert tools["update_task"].input_schema["required"] == ["task_id", "updates"]


async def test_created_task_is_listed_with_deltatask_result_keys(deltatask: ToolClient) -> None:
    created = await deltatask.call(
        "create_task", title="Rent for December", urgency=4, effort=3, tags=["home", "money"]
    )

    assert created["message"] == "Task created successfully"
    assert uuid.UUID(created["id"])
    listed = {task["id"]: task for task in await deltatask.call("list_tasks")}
    task = listed[created["id"]]
    assert TASK_KEYS | {"subtasks"} == set(task)
    assert (task["title"], task["urgency"], task["effort"]) == ("Rent for December", 4, 3)
    assert task["tags"] == ["home", "money"]
    assert task["completed"] is False


async def test_replaying_create_with_the_same_external_ref_returns_the_first_id(
    deltatask: ToolClient,
) -> None:
    first = await deltatask.call("create_task", title="Call mum", external_ref="tg:42:msg:7")
    replay = await deltatask.call("create_task", title="Call mum", external_ref="tg:42:msg:7")

    assert replay == first
    matching = await deltatask.call("search_tasks", query="call mum")
    assert [task["id"] for task in matching] == [first["id"]]
    found = await deltatask.call("find_by_ref", external_ref="tg:42:msg:7")
    assert found["id"] == first["id"]


async def test_unknown_task_ids_give_clear_errors(deltatask: ToolClient) -> None:
    missing = str(uuid.uuid4())

    assert await deltatask.fail("get_task_by_id", task_id=missing) == "Task not found"
    assert await deltatask.fail("finish_task", task_id=missing) == "Task not found"
    assert await deltatask.fail("delete_task", task_id=missing) == "Task not found"
    assert await deltatask.fail("get_subtasks", parent_id=missing) == "Parent task not found"
    assert "external_ref" in await deltatask.fail("find_by_ref", external_ref="nope")


async def test_out_of_range_urgency_effort_and_deadline_are_refused(
    deltatask: ToolClient,
) -> None:
    assert "Urgency must be between 1 and 5" in await deltatask.fail(
        "create_task", title="x", urgency=9
    )
    assert "Fibonacci" in await deltatask.fail("create_task", title="x", effort=4)
    assert "ISO 8601" in await deltatask.fail("create_task", title="x", deadline="next friday")
    assert await deltatask.call("search_tasks", query="x") == []


async def test_subtasks_nest_under_their_parent_and_go_when_it_is_deleted(
    deltatask: ToolClient,
) -> None:
    parent = await deltatask.call("create_task", title="Move flat")
    made = await deltatask.call(
        "create_subtasks",
        task_id=parent["id"],
        subtasks=[{"title": "Pack books", "effort": 2}, {"title": "Book van", "urgency": 5}],
    )

    assert made["message"] == "Created 2 subtasks"
    shown = await deltatask.call("get_task_by_id", task_id=parent["id"])
    assert [s["title"] for s in shown["subtasks"]] == ["Book van", "Pack books"]
    children = await deltatask.call("get_subtasks", parent_id=parent["id"])
    assert {c["parent_id"] for c in children} == {parent["id"]}

    await deltatask.call("delete_task", task_id=parent["id"])
    for sub_id in made["subtask_ids"]:
        assert await deltatask.fail("get_task_by_id", task_id=sub_id) == "Task not found"


async def test_an_invalid_subtask_creates_none_of_the_batch(deltatask: ToolClient) -> None:
    parent = await deltatask.call("create_task", title="Plan trip")

    error = await deltatask.fail(
        "create_subtasks",
        task_id=parent["id"],
        subtasks=[{"title": "Buy tickets"}, {"title": "Pack", "urgency": 0}],
    )

    assert "Urgency" in error
    assert await deltatask.call("get_subtasks", parent_id=parent["id"]) == []


async def test_finished_task_leaves_the_open_list_and_a_keyed_replay_changes_nothing(
    deltatask: ToolClient,
) -> None:
    task = await deltatask.call("create_task", title="Return library book")

    first = await deltatask.call("finish_task", task_id=task["id"], idempotency_key="fin-1")
    replay = await deltatask.call("finish_task", task_id=task["id"], idempotency_key="fin-1")

    assert replay == first
    assert first["task"]["completed"] is True
    open_ids = {t["id"] for t in await deltatask.call("list_tasks")}
    all_ids = {t["id"] for t in await deltatask.call("list_tasks", include_completed=True)}
    assert task["id"] not in open_ids
    assert task["id"] in all_ids


async def test_update_changes_fields_and_refuses_unknown_ones(deltatask: ToolClient) -> None:
    task = await deltatask.call("create_task", title="Fix the bike", tags=["errands"])

    updated = await deltatask.call(
        "update_task",
        task_id=task["id"],
        updates={"title": "Fix the bike brakes", "tags": ["bike"], "deadline": "2030-05-01"},
    )

    assert updated["message"] == "Task updated successfully"
    assert updated["task"]["tags"] == ["bike"]
    assert updated["task"]["deadline"] == "2030-05-01"
    assert "colour" in await deltatask.fail(
        "update_task", task_id=task["id"], updates={"colour": "red"}
    )
    assert "bike" in await deltatask.call("get_all_tags")
    assert [t["id"] for t in await deltatask.call("list_tasks", tags=["bike"])] == [task["id"]]


async def test_a_task_cannot_become_a_subtask_of_its_own_subtask(deltatask: ToolClient) -> None:
    parent = await deltatask.call("create_task", title="Renovate")
    child_id = (
        await deltatask.call("create_subtasks", task_id=parent["id"], subtasks=[{"title": "Paint"}])
    )["subtask_ids"][0]

    error = await deltatask.fail(
        "update_task", task_id=parent["id"], updates={"parent_id": child_id}
    )

    assert "subtask" in error


async def test_search_is_case_insensitive_for_cyrillic_titles(deltatask: ToolClient) -> None:
    task = await deltatask.call("create_task", title="Оплатить КВАРТИРУ", description="аренда")

    found = await deltatask.call("search_tasks", query="квартиру")

    assert [t["id"] for t in found] == [task["id"]]


async def test_tasks_and_statistics_survive_a_restart_without_touching_the_cwd(
    tmp_path: Path,
) -> None:
    env = {"DELTATASK_HOME": str(tmp_path / "state")}
    soon = (datetime.now(UTC) + timedelta(days=2)).date().isoformat()
    async with open_server("deltatask", env, tmp_path) as first:
        kept = await first.call("create_task", title="Pay rent", urgency=5, deadline=soon)
        done = await first.call("create_task", title="Buy milk", urgency=2)
        await first.call("finish_task", task_id=done["id"])

    async with open_server("deltatask", env, tmp_path) as second:
        again = await second.call("get_task_by_id", task_id=kept["id"])
        stats = await second.call("get_statistics")

    assert again["title"] == "Pay rent"
    assert stats["total"] == 2
    assert stats["completed"] == 1
    assert stats["completion_rate"] == 50
    assert stats["by_urgency"] == {"1": 0, "2": 0, "3": 0, "4": 0, "5": 1}
    assert stats["upcoming_deadlines"] == 1
    assert (tmp_path / "state" / "deltatask.db").exists()
    assert not (PROJECT_ROOT / "deltatask.db").exists()
    assert (tmp_path / "deltatask.stderr.log").read_text() == ""


async def test_list_changes_reads_each_write_and_delete_once_page_by_page(tmp_path: Path) -> None:
    env = {"DELTATASK_HOME": str(tmp_path / "state")}
    async with open_server("deltatask", env, tmp_path) as server:
        rent = await server.call("create_task", title="Rent", external_ref="uid-rent")
        milk = await server.call("create_task", title="Milk", external_ref="uid-milk")
        await server.call("create_subtasks", task_id=rent["id"], subtasks=[{"title": "Ask"}])
        seen = await server.call("list_changes")
        await server.call("update_task", task_id=milk["id"], updates={"title": "Oat milk"})
        await server.call("delete_task", task_id=rent["id"])

        first = await server.call("list_changes", after=seen["last"], limit=2)
        second = await server.call("list_changes", after=first["last"], limit=2)
        refused = await server.fail("list_changes", limit=0)

    assert [t["title"] for t in seen["tasks"]] == ["Rent", "Milk", "Ask"]
    assert seen["more"] is False
    # the edit, then the parent's and its subtask's tombstones, in write order
    assert [t["title"] for t in first["tasks"]] == ["Oat milk"]
    assert [d["external_ref"] for d in first["deleted"]] == ["uid-rent"]
    assert first["more"] is True
    assert second["tasks"] == []
    assert [d["external_ref"] for d in second["deleted"]] == [None]
    assert second["more"] is False
    assert first["tasks"][0]["updated"] > first["tasks"][0]["created"]
    assert refused == "limit must be at least 1"


async def test_a_store_from_before_revisions_is_upgraded_in_write_order(tmp_path: Path) -> None:
    home = tmp_path / "state"
    home.mkdir()
    with sqlite3.connect(home / "deltatask.db") as old:
        old.executescript(
            """
            CREATE TABLE tasks (id TEXT PRIMARY KEY, title TEXT NOT NULL,
                description TEXT NOT NULL DEFAULT '', created TEXT NOT NULL,
                updated TEXT NOT NULL, deadline TEXT, urgency INTEGER NOT NULL DEFAULT 1,
                effort INTEGER NOT NULL DEFAULT 1, completed INTEGER NOT NULL DEFAULT 0,
                parent_id TEXT REFERENCES tasks(id) ON DELETE CASCADE, external_ref TEXT UNIQUE);
            INSERT INTO tasks (id, title, created, updated) VALUES
                ('b', 'Second', '2026-01-02T00:00:00+00:00', '2026-01-02T00:00:00+00:00'),
                ('a', 'First', '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00');
            """
        )
    async with open_server("deltatask", {"DELTATASK_HOME": str(home)}, tmp_path) as server:
        before = await server.call("list_changes")
        made = await server.call("create_task", title="Third")
        after = await server.call("list_changes", after=before["last"])

    assert [t["title"] for t in before["tasks"]] == ["First", "Second"]
    assert [t["id"] for t in after["tasks"]] == [made["id"]]
