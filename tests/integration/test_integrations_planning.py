"""Shrimp (planning) and hpkv-memory (meaning) against their real servers, read back with
the servers' own tools; the same contract as every other integration, then what each adds."""

from __future__ import annotations

import asyncio
import base64
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from core.errors import ServerUnavailable, ToolFailed
from core.models import Change, Operation, Task, TaskStatus, new_uid
from core.settings import ServerConfig, load_config
from integrations import SemanticMemoryIntegration, ShrimpIntegration, build_integrations
from integrations import shrimp as shrimp_module
from integrations.filesystem import NAME_CHARS, FilesystemIntegration, safe_file_name
from integrations.mcp import HttpServerHandle, McpIntegration
from integrations.mcp.launch import REPO_ROOT
from integrations.semantic import BATCH_TOOL, PROJECT
from integrations.shrimp import parse_items
from tests.integration.conftest import NOW, free_port, make_task
from tests.integration.contract import Copy, IntegrationContract, Servers, server_fixture

pytestmark = pytest.mark.timeout(120)

# -- how each server shows a task, through its own tools -----------------------------------


async def _shrimp_copies(integration: McpIntegration, uid: str) -> list[Copy]:
    assert isinstance(integration, ShrimpIntegration)
    return [
        {"title": item.name, "status": "done" if item.status == "completed" else "open"}
        for item in await integration.find(uid)
    ]


async def _memories(integration: McpIntegration, chat_id: int | None = None) -> list[Any]:
    """Every taskbot memory (of one chat, if given): with minScore 0 a search returns all."""
    arguments: dict[str, Any] = {"query": "task", "topK": 1000, "minScore": 0}
    arguments["project_name"] = PROJECT
    if chat_id is not None:
        arguments["session_name"] = str(chat_id)
    return await integration._call_list("search_memory", arguments)


async def _semantic_copies(integration: McpIntegration, uid: str) -> list[Copy]:
    return [
        {
            "title": memory["content"].splitlines()[0],
            "status": memory["metadata"]["status"],
        }
        for memory in await _memories(integration)
        if memory["metadata"].get("task_uid") == uid
    ]


def _watch_calls(integration: McpIntegration, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The tools the integration calls from now on, in order; the server answers as ever."""
    sent: list[str] = []
    real = integration.handle.call

    async def call(
        tool: str,
        arguments: Any = None,
        *,
        timeout: float,  # noqa: ASYNC109 - the signature of the handle's call, passed on
    ) -> object:
        sent.append(tool)
        return await real(tool, arguments, timeout=timeout)

    monkeypatch.setattr(integration.handle, "call", call)
    return sent


SERVERS: Servers = {
    "shrimp-task-manager": (lambda d: ShrimpIntegration(data_dir=d), _shrimp_copies),
    "hpkv-memory": (lambda d: SemanticMemoryIntegration(data_dir=d), _semantic_copies),
}
server = server_fixture(SERVERS)


class TestContract(IntegrationContract):
    """The shared contract over shrimp-task-manager and hpkv-memory."""


# -- shrimp: planning ------------------------------------------------------------------------


def _steps(*titles: str) -> list[Task]:
    return [make_task(id=20 + n, title=title, tags=("sub-12",)) for n, title in enumerate(titles)]


@pytest.fixture
async def shrimp(data_dir: Path, no_leaked_children: None) -> AsyncIterator[ShrimpIntegration]:
    async with ShrimpIntegration(data_dir=data_dir) as integration:
        yield integration


async def test_a_plan_file_cut_short_by_a_crash_is_restored_and_the_change_retried(
    shrimp: ShrimpIntegration,
) -> None:
    """Regression: kill -9 mid-write left shrimp's tasks.json cut off; every later call failed
    as a refusal (rows dead) and the whole plan was gone."""
    kept = make_task(id=1, title="Kept across the crash")
    later = make_task(id=2, title="Written after the crash")
    await shrimp.apply(Change(Operation.CREATE, kept))
    plan_file = shrimp.state_dir / "tasks.json"
    whole = plan_file.read_bytes()
    plan_file.write_bytes(whole[: len(whole) // 2])  # what a kill between truncate and write leaves

    with pytest.raises(ServerUnavailable, match="restored the last good copy"):
        await shrimp.apply(Change(Operation.CREATE, later))
    await shrimp.apply(Change(Operation.CREATE, later))  # the orchestrator's retry

    assert sorted(item.uid for item in await shrimp.plan()) == sorted([kept.uid, later.uid])


async def _chain(shrimp: ShrimpIntegration) -> dict[str, tuple[str, ...]]:
    """Title -> titles it waits for, as shrimp's list shows the plan."""
    plan = await shrimp.plan()
    names = {item.id: item.name for item in plan}
    return {item.name: tuple(names[d] for d in item.dependencies) for item in plan}


async def test_a_split_plans_the_steps_as_a_chain_the_parent_waits_for(
    shrimp: ShrimpIntegration,
) -> None:
    parent = make_task(title="Paint the kitchen")
    steps = _steps("Buy paint", "Paint walls", "Clean up")

    ids = await shrimp.split(parent, steps)
    again = await shrimp.split(parent, steps)

    assert again == ids
    assert len(set(ids)) == 3
    assert await _chain(shrimp) == {
        "Paint the kitchen": ("Clean up",),
        "Buy paint": (),
        "Paint walls": ("Buy paint",),
        "Clean up": ("Paint walls",),
    }


async def test_a_step_the_fan_out_copied_first_is_linked_in_place_not_duplicated(
    shrimp: ShrimpIntegration,
) -> None:
    parent = make_task(title="Paint the kitchen")
    steps = _steps("Buy paint", "Paint walls")
    early = await shrimp.apply(Change(Operation.CREATE, steps[1]))

    # The fan-out of a step and the split race; one lock orders them either way.
    created, ids = await asyncio.gather(
        shrimp.apply(Change(Operation.CREATE, steps[0])), shrimp.split(parent, steps)
    )

    assert ids == [created, early]
    assert await _chain(shrimp) == {
        "Paint the kitchen": ("Paint walls",),
        "Buy paint": (),
        "Paint walls": ("Buy paint",),
    }


async def test_finishing_a_step_early_drops_its_open_prerequisites(
    shrimp: ShrimpIntegration,
) -> None:
    steps = _steps("Buy paint", "Paint walls")
    await shrimp.split(make_task(title="Paint the kitchen"), steps)

    await shrimp.apply(Change(Operation.COMPLETE, steps[1].evolve(version=2)))

    assert await _shrimp_copies(shrimp, steps[1].uid) == [
        {"title": "Paint walls", "status": "done"}
    ]
    assert await _shrimp_copies(shrimp, steps[0].uid) == [{"title": "Buy paint", "status": "open"}]
    assert (await _chain(shrimp))["Paint walls"] == ()


async def test_deleting_a_middle_step_joins_its_neighbours(shrimp: ShrimpIntegration) -> None:
    steps = _steps("Buy paint", "Paint walls", "Clean up")
    await shrimp.split(make_task(title="Paint the kitchen"), steps)

    await shrimp.apply(Change(Operation.DELETE, steps[1].evolve(version=2)))

    chain = await _chain(shrimp)
    assert "Paint walls" not in chain
    assert chain["Clean up"] == ("Buy paint",)


async def test_a_burst_of_creates_shares_one_lookup_and_one_append_and_copies_each_once(
    shrimp: ShrimpIntegration, monkeypatch: pytest.MonkeyPatch
) -> None:
    earlier = [make_task(id=40 + n, title=f"Earlier {n}") for n in range(3)]
    earlier_ids = [await shrimp.apply(Change(Operation.CREATE, task)) for task in earlier]
    fresh = [make_task(id=50 + n, title=f"Fresh {n}") for n in range(9)]
    sent = _watch_calls(shrimp, monkeypatch)

    # Replays of the earlier creates ride along, as after a lost reply.
    ids = await asyncio.gather(
        *(shrimp.apply(Change(Operation.CREATE, task)) for task in [*fresh, *earlier])
    )

    assert sent == ["list_tasks", "split_tasks"]
    assert ids[9:] == earlier_ids
    for task, shrimp_id in zip([*fresh, *earlier], ids, strict=True):
        (copy,) = await shrimp.find(task.uid)
        assert (copy.id, copy.name) == (shrimp_id, task.title)
    assert len(await shrimp.plan()) == 12


async def test_an_entry_shrimp_refuses_fails_its_own_create_and_the_rest_of_the_group_lands(
    shrimp: ShrimpIntegration, monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks = [make_task(id=60 + n, title=f"Grouped {n}") for n in range(5)]
    bad = tasks[2]
    real_name = shrimp_module.task_name

    def name(task: Task) -> str:  # past shrimp's 100-character limit for one task only
        return f"{'x' * 100} [{task.uid}]" if task.uid == bad.uid else real_name(task)

    monkeypatch.setattr(shrimp_module, "task_name", name)

    outcomes = await asyncio.gather(
        *(shrimp.apply(Change(Operation.CREATE, task)) for task in tasks),
        return_exceptions=True,
    )

    assert isinstance(outcomes[2], ToolFailed)
    assert all(isinstance(outcome, str) for n, outcome in enumerate(outcomes) if n != 2)
    assert await shrimp.find(bad.uid) == []
    for task in tasks[:2] + tasks[3:]:
        assert [item.name for item in await shrimp.find(task.uid)] == [task.title]


async def test_a_title_of_emoji_fits_shrimps_name_limit_counted_in_utf16_units(
    shrimp: ShrimpIntegration,
) -> None:
    task = make_task(title="🎉" * 70)

    shrimp_id = await shrimp.apply(Change(Operation.CREATE, task))

    (copy,) = await shrimp.find(task.uid)
    assert copy.id == shrimp_id
    assert copy.name == "🎉" * 29 + "…"


async def test_an_empty_plan_reads_as_empty_whatever_language_the_notice_is_in(
    shrimp: ShrimpIntegration,
) -> None:
    notice = await shrimp._call_text("list_tasks", {"status": "all"})

    assert await shrimp.plan() == []
    assert parse_items(notice) == []


def test_a_title_that_quotes_an_id_does_not_pass_for_the_tasks_own() -> None:
    uid = new_uid()
    own = "0b5c8a51-4f3e-4d2a-9c1b-2e6f7a8b9c0d"
    quoted = "11111111-2222-4333-8444-555555555555"
    reply = f"### Check {quoted} [{uid}] (ID: {own})\n\n- Status: pending\n- Description: x\n"

    (item,) = parse_items(reply)

    assert (item.id, item.uid, item.status) == (own, uid, "pending")
    assert item.name == f"Check {quoted}"


# -- hpkv-memory: meaning --------------------------------------------------------------------

CHAT_TASKS = [
    ("Rent for December", ("home",)),
    ("Buy milk", ("shop",)),
    ("Fix the bike", ()),
    ("Call the dentist", ("health",)),
]


async def _remember(memory: SemanticMemoryIntegration, chat_id: int) -> dict[str, str]:
    """The chat's tasks stored as memories; uid -> title."""
    titles = {}
    for n, (title, tags) in enumerate(CHAT_TASKS):
        task = make_task(id=n + 1, title=title, description="", tags=tags, chat_id=chat_id)
        assert await memory.apply(Change(Operation.CREATE, task))
        titles[task.uid] = title
    return titles


@pytest.mark.usefixtures("no_leaked_children")
async def test_memory_search_finds_by_meaning_within_one_chat(data_dir: Path) -> None:
    async with SemanticMemoryIntegration(data_dir=data_dir) as memory:
        mine = await _remember(memory, chat_id=1)
        theirs = await _remember(memory, chat_id=2)
        hits = await memory.search("pay the flat", chat_id=1)
        bike = await memory.search("bicycle repair", chat_id=1)
        nonsense = await memory.search("xyzzy qwerty", chat_id=1)

    assert mine[hits[0].task_uid] == "Rent for December"
    assert len(hits) < len(mine)  # only the close ones, not every memory of the chat
    assert not {hit.task_uid for hit in hits} & set(theirs)
    assert all(hit.chat_id == 1 for hit in hits)
    assert [mine[hit.task_uid] for hit in bike] == ["Fix the bike"]
    assert nonsense == []


@pytest.fixture
async def remote_memory(tmp_path: Path) -> AsyncIterator[str]:
    """Our semantic_memory server over streamable HTTP on loopback, behind an API key."""
    port = free_port()
    env = dict(
        os.environ,
        SEMANTIC_MEMORY_HOME=str(tmp_path / "remote"),
        SEMANTIC_MEMORY_API_KEY="remote-test-key",
        PYTHONPATH=str(REPO_ROOT),
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "integrations.servers.semantic_memory",
        "--http",
        str(port),
        env=env,
        cwd=REPO_ROOT,
    )
    try:
        async with asyncio.timeout(30):
            while True:
                try:
                    _, writer = await asyncio.open_connection("127.0.0.1", port)
                except OSError:
                    await asyncio.sleep(0.05)
                    continue
                writer.close()
                await writer.wait_closed()
                break
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        await process.wait()


async def test_the_config_switch_reaches_a_remote_memory_over_http_with_its_api_key(
    remote_memory: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HPKV_API_KEY", "remote-test-key")
    config = ServerConfig(transport="http", url=remote_memory, api_key_env="HPKV_API_KEY")
    async with SemanticMemoryIntegration(config, data_dir) as memory:
        assert isinstance(memory.handle, HttpServerHandle)
        titles = await _remember(memory, chat_id=7)
        hits = await memory.search("pay the flat", chat_id=7)
        gone = make_task(chat_id=7)
        key = await memory.apply(Change(Operation.CREATE, gone))
        await memory.apply(Change(Operation.DELETE, gone.evolve(version=2), key))
        where = await memory.locate(gone.uid, key)

    assert titles[hits[0].task_uid] == "Rent for December"
    assert key is not None and key.startswith(f"{PROJECT}_")
    assert where is None


async def test_a_remote_memory_refuses_a_wrong_api_key(
    remote_memory: str, data_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HPKV_API_KEY", "not-the-key")
    config = ServerConfig(transport="http", url=remote_memory, api_key_env="HPKV_API_KEY")
    memory = SemanticMemoryIntegration(config, data_dir)

    with pytest.raises(ServerUnavailable, match="failed to start"):
        await memory.start()
    await memory.close()


async def test_a_burst_of_memory_stores_travels_in_one_call_and_each_task_keeps_its_own_key(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, no_leaked_children: None
) -> None:
    tasks = [make_task(id=n, title=f"Errand number {n}", chat_id=3) for n in range(12)]
    async with SemanticMemoryIntegration(data_dir=data_dir) as memory:
        sent = _watch_calls(memory, monkeypatch)
        # All twelve arrive in one turn of the loop, so one call carries them.
        keys = await asyncio.gather(*(memory.apply(Change(Operation.CREATE, t)) for t in tasks))
        done = tasks[4].evolve(status=TaskStatus.DONE, version=2)
        again = await memory.apply(Change(Operation.COMPLETE, done, keys[4]))
        stored = [await memory._get(str(key)) for key in keys]

    assert sent[:2] == ["store_memories", "store_memories"]
    assert "store_memory" not in sent
    assert len(set(keys)) == 12
    assert again == keys[4]
    for task, memory_item in zip(tasks, stored, strict=True):
        assert memory_item is not None
        assert memory_item["metadata"]["task_uid"] == task.uid
        assert memory_item["content"].splitlines()[0] == task.title
    assert stored[4] is not None and stored[4]["metadata"]["status"] == "done"


async def test_a_memory_server_that_does_not_announce_the_batch_tool_gets_one_store_per_change(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, no_leaked_children: None
) -> None:
    tasks = [make_task(id=n, title=f"Errand number {n}", chat_id=4) for n in range(3)]
    async with SemanticMemoryIntegration(data_dir=data_dir) as memory:
        # As the hosted HPKV would announce its tools: store_memory, but no store_memories.
        memory.handle.tools = memory.handle.tools - {BATCH_TOOL}
        sent = _watch_calls(memory, monkeypatch)
        keys = await asyncio.gather(*(memory.apply(Change(Operation.CREATE, t)) for t in tasks))
        owners = [(await memory._get(str(key)) or {}).get("metadata", {}) for key in keys]

    assert sent[:3] == ["store_memory"] * 3
    assert BATCH_TOOL not in sent
    assert [owner.get("task_uid") for owner in owners] == [t.uid for t in tasks]


# -- filesystem: what users keep with a task ------------------------------------------------


@pytest.mark.usefixtures("no_leaked_children")
async def test_attachments_keep_their_bytes_and_never_overwrite_each_other(data_dir: Path) -> None:
    binary = bytes(range(256)) * 4  # 1024 bytes: 14 lines of base64, no padding
    async with FilesystemIntegration(data_dir=data_dir) as files:
        task = make_task()
        first = await files.attach(task.uid, "lease.pdf", binary)
        second = await files.attach(task.uid, "lease.pdf", binary[:100])
        text = await files.attach(task.uid, "../../../etc/passwd", b"not really\n")
        tricky = await files.attach(task.uid, "plain.b64", b"already text")
        listed = await files.attachments(task.uid)

    folder = files.files_dir / "tasks" / task.uid / "attachments"
    assert [first.name, second.name, text.name, tricky.name] == [
        "lease.pdf",
        "lease (2).pdf",
        "passwd",
        "plain.b64.txt",
    ]
    assert sorted(p.name for p in folder.iterdir()) == [
        "lease (2).pdf.b64",
        "lease.pdf.b64",
        "passwd",
        "plain.b64.txt",
    ]
    assert base64.b64decode((folder / "lease.pdf.b64").read_text()) == binary
    assert (folder / "passwd").read_bytes() == b"not really\n"
    assert [(a.name, a.size, a.encoded) for a in listed] == [
        ("lease (2).pdf", 100, True),
        ("lease.pdf", 1024, True),
        ("passwd", 11, False),
        ("plain.b64.txt", 12, False),
    ]


@pytest.mark.usefixtures("no_leaked_children")
async def test_notes_accumulate_under_one_heading(data_dir: Path) -> None:
    async with FilesystemIntegration(data_dir=data_dir) as files:
        task = make_task()
        before = await files.notes(task.uid)
        for line in ("Called the bank", "Sent the forms\nby post"):
            await files.add_note(task.uid, line, when=NOW, heading="Notes on task #12")
        after = await files.notes(task.uid)

    assert before is None
    assert after == (
        "# Notes on task #12\n\n"
        "- 2026-12-04 12:00 UTC · Called the bank\n"
        "- 2026-12-04 12:00 UTC · Sent the forms\n  by post\n"
    )


@pytest.mark.parametrize(
    ("raw", "safe"),
    [
        ("../../etc/passwd", "passwd"),
        ("..\\..\\boot.ini", "boot.ini"),
        ("..", "file"),
        (".hidden", "hidden"),
        ("a\x00b\nc.txt", "a_b_c.txt"),
        ("Отчёт за март.pdf", "Отчёт за март.pdf"),
        ("<script>.html", "_script_.html"),
    ],
)
def test_file_names_are_made_safe(raw: str, safe: str) -> None:
    assert safe_file_name(raw) == safe


def test_a_long_file_name_keeps_its_extension_within_the_limit() -> None:
    name = safe_file_name("x" * 500 + ".pdf")

    assert len(name) == NAME_CHARS
    assert name.endswith("x.pdf")


# -- wiring ------------------------------------------------------------------------------


def test_the_shipped_config_builds_the_planning_and_memory_integrations(data_dir: Path) -> None:
    config = load_config()

    built = build_integrations(config, data_dir)
    without = build_integrations(
        config.with_servers(shrimp_task_manager={"enabled": False}, hpkv_memory={"enabled": False}),
        data_dir,
    )

    assert isinstance(built["shrimp-task-manager"], ShrimpIntegration)
    assert isinstance(built["hpkv-memory"], SemanticMemoryIntegration)
    assert "shrimp-task-manager" not in without
    assert "hpkv-memory" not in without
