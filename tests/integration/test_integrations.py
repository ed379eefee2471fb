"""Each integration against its real server; what it wrote is read back with the server's tools."""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import pytest

from core.integration import discover_factory
from core.models import Change, Operation
from core.settings import load_config
from integrations import (
    DeltaTaskIntegration,
    FilesystemIntegration,
    GitIntegration,
    MCPIntegrationManager,
    MemoryIntegration,
    build_integrations,
)
from integrations.mcp import McpIntegration
from tests.integration.conftest import make_task
from tests.integration.contract import Copy, IntegrationContract, Servers, server_fixture

pytestmark = pytest.mark.timeout(120)

# -- how each server shows a task, through its own tools -----------------------------------


async def _deltatask_copies(integration: McpIntegration, uid: str) -> list[Copy]:
    tasks = await integration._call_list("list_tasks", {"include_completed": True})
    return [
        {"title": t["title"], "status": "done" if t["completed"] else "open"}
        for t in tasks
        if t.get("external_ref") == uid
    ]


async def _memory_copies(integration: McpIntegration, uid: str) -> list[Copy]:
    graph = await integration._call_dict("read_graph")
    copies = []
    for entity in graph["entities"]:
        if entity["name"] == f"task:{uid}":
            facts = dict(o.split(": ", 1) for o in entity["observations"])
            copies.append({"title": facts["title"], "status": facts["status"]})
    return copies


async def _filesystem_copies(integration: McpIntegration, uid: str) -> list[Copy]:
    assert isinstance(integration, FilesystemIntegration)
    tasks_dir = str(integration.files_dir / "tasks")
    listing = await integration._call_text("list_directory", {"path": tasks_dir})
    copies = []
    for line in listing.splitlines():
        if line.startswith("[FILE] ") and uid in line:
            text = await integration._call_text(
                "read_text_file", {"path": f"{tasks_dir}/{line[7:]}"}
            )
            status = re.search(r'^status: "(\w+)"$', text, re.MULTILINE)
            title = re.search(r"^# (.*)$", text, re.MULTILINE)
            assert status and title
            copies.append({"title": title.group(1), "status": status.group(1)})
    return copies


async def _git_copies(integration: McpIntegration, uid: str) -> list[Copy]:
    """The task as its newest commit describes it; none once its last commit removed it."""
    assert isinstance(integration, GitIntegration)
    history = await integration.history(uid)
    if not history:
        return []
    match = re.fullmatch(r"task \d+ (\w+): (.*)", history[0][2])
    assert match, history[0]
    action, title = match.groups()
    if action in ("delete", "undo"):
        return []
    return [{"title": title, "status": "done" if action == "complete" else "open"}]


SERVERS: Servers = {
    "deltatask": (lambda d: DeltaTaskIntegration(data_dir=d), _deltatask_copies),
    "memory": (lambda d: MemoryIntegration(data_dir=d), _memory_copies),
    "filesystem": (lambda d: FilesystemIntegration(data_dir=d), _filesystem_copies),
    "git": (lambda d: GitIntegration(data_dir=d), _git_copies),
}
server = server_fixture(SERVERS)


class TestContract(IntegrationContract):
    """The shared contract over deltatask, memory, filesystem and git."""


# -- what each server adds ---------------------------------------------------------------


@pytest.mark.usefixtures("no_leaked_children")
async def test_memory_relates_a_task_to_its_tags_and_assignee(data_dir: Path) -> None:
    async with MemoryIntegration(data_dir=data_dir) as memory:
        task = make_task()
        await memory.apply(Change(Operation.CREATE, task))
        assert await memory.related(task.uid) == ["person:alice", "tag:q4", "tag:work"]

        moved = task.evolve(tags=("home",), assignee=None, priority=1, version=2)
        await memory.apply(Change(Operation.UPDATE, moved))
        assert await memory.related(task.uid) == ["tag:home"]
        entity = await memory.entity(task.uid)

    assert entity is not None
    priorities = [o for o in entity["observations"] if o.startswith("priority: ")]
    assert priorities == ["priority: 1"]
    assert entity["entityType"] == "task"


@pytest.mark.usefixtures("no_leaked_children")
async def test_filesystem_moves_a_deleted_task_to_the_trash_and_keeps_every_copy(
    data_dir: Path,
) -> None:
    async with FilesystemIntegration(data_dir=data_dir) as files:
        task = make_task()
        for version in (1, 3):
            await files.apply(Change(Operation.CREATE, task.evolve(version=version)))
            await files.apply(Change(Operation.DELETE, task.evolve(version=version + 1)))
        trash = str(files.files_dir / "tasks" / ".trash")
        listing = await files._call_text("list_directory", {"path": trash})
        first = await files._call_text("read_text_file", {"path": f"{trash}/{task.uid}.md"})

    assert f"[FILE] {task.uid}.md" in listing
    assert f"[FILE] {task.uid}.2.md" in listing
    assert f"# {task.title}" in first


@pytest.mark.usefixtures("no_leaked_children")
async def test_git_commits_each_change_once_and_tells_its_history(data_dir: Path) -> None:
    async with GitIntegration(data_dir=data_dir) as git:
        task = make_task(title="Call the bank\nabout the loan")
        await git.apply(Change(Operation.CREATE, task))
        await git.apply(Change(Operation.CREATE, task))  # replay: no empty commit
        await git.apply(Change(Operation.COMPLETE, task.evolve(version=2)))
        await git.apply(Change(Operation.DELETE, task.evolve(version=3)))
        history = await git.history(task.uid)
        status = await git._call_text("git_status", {"repo_path": str(git.repo)})

    assert [subject for _, _, subject in history] == [
        "task 12 delete: Call the bank about the loan",
        "task 12 complete: Call the bank about the loan",
        "task 12 create: Call the bank about the loan",
    ]
    assert all(re.fullmatch(r"[0-9a-f]{40}", sha) for sha, _, _ in history)
    assert "nothing to commit" in status
    assert not (git.repo / "tasks" / f"{task.uid}.md").exists()


@pytest.mark.usefixtures("no_leaked_children")
async def test_git_commits_a_burst_of_changes_together_and_keeps_each_history(
    data_dir: Path,
) -> None:
    tasks = [make_task(uid=f"{i:032x}", id=i + 1, title=f"burst {i}") for i in range(20)]
    async with GitIntegration(data_dir=data_dir) as git:
        await asyncio.gather(*(git.apply(Change(Operation.CREATE, t)) for t in tasks))
        histories = [await git.history(t.uid) for t in tasks]
        log = await git._call_text("git_log", {"repo_path": str(git.repo), "max_count": 100})

    commits = log.count("Commit: ")
    assert commits < len(tasks), "changes arriving together share commits"
    for task, history in zip(tasks, histories, strict=True):
        assert [subject for _, _, subject in history] == [f"task {task.id} create: {task.title}"]


@pytest.mark.usefixtures("no_leaked_children")
async def test_deltatask_client_creates_and_reads_tasks_directly(data_dir: Path) -> None:
    async with DeltaTaskIntegration(data_dir=data_dir) as client:
        created = await client.create_task(title="Buy milk", description="2 litres", priority=1)
        fetched = await client.get_task(created["id"])
        listed = await client.list_tasks()

    assert fetched["title"] == "Buy milk"
    assert fetched["urgency"] == 5
    assert [t["id"] for t in listed] == [created["id"]]


# -- wiring ------------------------------------------------------------------------------

#: Every server the default configuration enables, by name, sorted.
SHIPPED = [
    "backup",
    "calendar",
    "deltatask",
    "filesystem",
    "git",
    "hpkv-memory",
    "memory",
    "notifications",
    "shrimp-task-manager",
    "time-tracker",
]


def test_the_installed_entry_point_builds_one_integration_per_enabled_server(
    data_dir: Path,
) -> None:
    factory = discover_factory()
    assert factory is build_integrations
    config = load_config()

    built = factory(config, data_dir)
    without_memory = build_integrations(config.with_servers(memory={"enabled": False}), data_dir)

    assert sorted(built) == SHIPPED
    assert sorted(without_memory) == [name for name in SHIPPED if name != "memory"]
    assert all(built[name].name == name for name in built)


@pytest.mark.usefixtures("no_leaked_children")
async def test_the_manager_creates_a_task_on_every_server(data_dir: Path) -> None:
    async with MCPIntegrationManager(load_config(), data_dir) as manager:
        results = await manager.create_task_integrated(
            {"title": "Plan the offsite", "priority": 2, "tags": ["team"], "deadline": "2026-12-20"}
        )

    assert sorted(results) == SHIPPED
    assert all(result["ok"] for result in results.values()), results
    # Notifications, time-tracker and backup keep no copy of a task: no id to link.
    no_copy = ("backup", "notifications", "time-tracker")
    assert all(r["external_id"] for name, r in results.items() if name not in no_copy)
    assert [results[name]["external_id"] for name in no_copy] == [None, None, None]


@pytest.mark.usefixtures("no_leaked_children")
async def test_a_manager_used_once_starts_and_stops_its_servers_itself(data_dir: Path) -> None:
    config = load_config().with_servers(filesystem={"command": "/nonexistent/mcp-filesystem"})

    results = await MCPIntegrationManager(config, data_dir).create_task_integrated(
        {"title": "One-shot", "uid": "fixed-uid-1"}
    )

    assert results["filesystem"]["ok"] is False
    assert "failed to start" in results["filesystem"]["error"]
    assert {name: r["ok"] for name, r in results.items() if name != "filesystem"} == {
        "backup": True,
        "calendar": True,
        "deltatask": True,
        "git": True,
        "hpkv-memory": True,
        "memory": True,
        "notifications": True,
        "shrimp-task-manager": True,
        "time-tracker": True,
    }
    assert results["memory"]["external_id"] == "task:fixed-uid-1"
