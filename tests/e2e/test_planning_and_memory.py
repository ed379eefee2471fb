"""Planning, meaning, the graph, history and files, end to end: chat in, real servers behind."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from core.models import OutboxState, Task
from integrations.filesystem import FilesystemIntegration
from integrations.shrimp import ShrimpIntegration
from tests.e2e.conftest import BotWorld, StartBot

pytestmark = pytest.mark.timeout(120)

Json = dict[str, Any]
PLANNER = "shrimp-task-manager"


def buttons(message: Json) -> dict[str, str]:
    rows = message.get("reply_markup", {}).get("inline_keyboard", [])
    return {b["text"]: b.get("callback_data", "") for row in rows for b in row}


def shown(world: BotWorld, message: Json) -> Json:
    chat = message["chat"]["id"]
    return next(m for m in world.sb.messages(chat) if m["message_id"] == message["message_id"])


async def synced(world: BotWorld, *tasks: Task) -> None:
    """Wait until every server holds every task, and fail loudly if one refused."""
    for task in tasks:
        states = await world.orch.wait_synced(task.uid, within=30)
        assert set(states.values()) == {OutboxState.DONE}, states


async def add(world: BotWorld, title: str, chat_id: int = 1, **fields: Any) -> Task:
    return await world.orch.create_task(title, chat_id=chat_id, author_id=chat_id, **fields)


# -- /split --------------------------------------------------------------------------------


async def test_split_makes_steps_that_show_in_the_list_and_as_a_chain_in_shrimp(
    start_bot: StartBot,
) -> None:
    world = await start_bot(servers=("deltatask", PLANNER))
    await world.say("/new Paint the kitchen #home")

    (reply,) = await world.say("/split 1 Buy paint; Paint walls; Clean up")

    assert "#1" in reply["text"] and "Paint the kitchen" in reply["text"]
    assert "Planned as a chain" in reply["text"]
    for title in ("Buy paint", "Paint walls", "Clean up"):
        assert title in reply["text"]
    assert list(buttons(reply)) == ["✅ #2 Buy paint", "✅ #3 Paint walls", "✅ #4 Clean up"]
    (listed,) = await world.say("/list #sub-1")
    assert "(3)" in listed["text"]
    steps = await world.orch.list_tasks(1)
    assert [(t.id, t.tags) for t in steps[1:]] == [(n, ("home", "sub-1")) for n in (2, 3, 4)]
    await synced(world, *steps)
    shrimp = world.orch.integration(PLANNER)
    assert isinstance(shrimp, ShrimpIntegration)
    plan = {item.id: item for item in await shrimp.plan()}
    waits = {item.name: [plan[d].name for d in item.dependencies] for item in plan.values()}
    assert waits == {
        "Paint the kitchen": ["Clean up"],
        "Buy paint": [],
        "Paint walls": ["Buy paint"],
        "Clean up": ["Paint walls"],
    }


async def test_a_steps_done_button_finishes_it_everywhere_and_redraws_the_list(
    start_bot: StartBot,
) -> None:
    world = await start_bot(servers=("deltatask", PLANNER))
    await world.say("/new Move house")
    (reply,) = await world.say("/split 1\nPack boxes\nBook a van")

    answer = await world.press(reply, buttons(reply)["✅ #2 Pack boxes"])

    assert "Done" in answer["text"] and "#2" in answer["text"]
    redrawn = shown(world, reply)
    assert "✔️ #2 Pack boxes" in redrawn["text"]
    assert list(buttons(redrawn)) == ["✅ #3 Book a van"]
    step = await world.orch.get_task(2, chat_id=1)
    await synced(world, step)
    shrimp = world.orch.integration(PLANNER)
    assert isinstance(shrimp, ShrimpIntegration)
    assert [item.status for item in await shrimp.find(step.uid)] == ["completed"]


async def test_split_without_the_planner_still_makes_the_steps_and_says_so(
    start_bot: StartBot,
) -> None:
    world = await start_bot(servers=("deltatask",))
    await world.say("/new Paint the kitchen")

    (reply,) = await world.say("/split 1 Buy paint; Paint walls")

    assert "Planning sync is off" in reply["text"]
    assert [t.title for t in await world.orch.list_tasks(1)] == [
        "Paint the kitchen",
        "Buy paint",
        "Paint walls",
    ]


async def test_split_of_a_task_that_is_not_here_or_without_steps_explains_itself(
    start_bot: StartBot,
) -> None:
    world = await start_bot(servers=("deltatask",))
    await world.say("/new Paint the kitchen")

    (missing,) = await world.say("/split 9 Buy paint")
    (bare,) = await world.say("/split 1")
    (empty,) = await world.say("/split 1 ; ;")

    assert "can't find task #9" in missing["text"]
    assert "/split 12 Buy paint" in bare["text"]
    assert "/split 12 Buy paint" in empty["text"]
    assert len(await world.orch.list_tasks(1)) == 1


# -- /search by meaning ------------------------------------------------------------------------

CHAT_TASKS = [
    ("Rent for December", ["home"]),
    ("Buy milk", ["shop"]),
    ("Fix the bike", []),
    ("Call the dentist", ["health"]),
]


async def test_search_finds_by_meaning_within_the_chat_only(start_bot: StartBot) -> None:
    world = await start_bot(servers=("deltatask", "hpkv-memory"))
    mine = [await add(world, title, tags=tags) for title, tags in CHAT_TASKS]
    theirs = await add(world, "Pay the flat rent", chat_id=2)
    await synced(world, *mine, theirs)
    await world.orch.delete_task(mine[1].id, chat_id=1)
    await synced(world, mine[1])

    (reply,) = await world.say("/search pay the flat")

    lines = reply["text"].splitlines()
    assert "Rent for December" in lines[1]
    assert "Pay the flat rent" not in reply["text"]
    assert "Buy milk" not in reply["text"]
    assert "Fix the bike" not in reply["text"]  # a different subject is not a result
    (nothing,) = await world.say("/search xyzzy qwerty")
    assert "Nothing matches" in nothing["text"]


async def test_search_falls_back_to_words_when_the_memory_server_is_off(
    start_bot: StartBot,
) -> None:
    world = await start_bot(servers=("deltatask",))
    for title, tags in CHAT_TASKS:
        await add(world, title, tags=tags)

    (words,) = await world.say("/search milk")
    (meaning,) = await world.say("/search pay the flat")

    assert "Buy milk" in words["text"]
    assert "Nothing matches" in meaning["text"]


# -- /related, /history ------------------------------------------------------------------------


async def test_related_lists_tasks_sharing_a_tag_or_a_person(start_bot: StartBot) -> None:
    world = await start_bot(servers=("deltatask", "memory"))
    report = await add(world, "Write the report", tags=["work"], assignee="alice")
    slides = await add(world, "Make the slides", tags=["work"])
    call = await add(world, "Call the plumber", tags=["home"], assignee="alice")
    garden = await add(world, "Water the garden", tags=["home"])
    elsewhere = await add(world, "Other chat's work", chat_id=2, tags=["work"])
    await synced(world, report, slides, call, garden, elsewhere)

    (reply,) = await world.say(f"/related {report.id}")
    (alone,) = await world.say(f"/related {garden.id}")

    body = reply["text"]
    assert "#work" in body and "Make the slides" in body
    assert "@alice" in body and "Call the plumber" in body
    assert body.index("#work") < body.index("Make the slides")
    assert "Water the garden" not in body
    assert "Other chat's work" not in body
    assert "Call the plumber" in alone["text"]  # shares #home
    (off,) = await world.say("/history 1")
    assert "not enabled" in off["text"]


async def test_history_after_create_and_done_shows_two_commits(start_bot: StartBot) -> None:
    world = await start_bot(servers=("deltatask", "git"))
    await world.say("/new Pay rent")
    await world.say("/done 1")
    await synced(world, await world.orch.get_task(1, chat_id=1))

    (reply,) = await world.say("/history 1")

    lines = reply["text"].splitlines()
    assert "2 commits" in lines[0]
    assert "task 1 complete: Pay rent" in lines[1]
    assert "task 1 create: Pay rent" in lines[2]


# -- files and notes ---------------------------------------------------------------------------

PDF = b"%PDF-1.4\n\x00\xff\xfe binary lease \x00" * 100  # 2.6 KB, not UTF-8


async def test_a_document_sent_to_a_task_is_stored_and_listed(start_bot: StartBot) -> None:
    world = await start_bot(servers=("deltatask", "filesystem"))
    (card,) = await world.say("/new Sign the lease")

    world.sb.send_document(1, "lease.pdf", PDF, reply_to_message_id=card["message_id"])
    (saved,) = await world.sb.wait_for_messages(1, timeout=10)
    world.sb.send_document(1, "../../checklist.txt", b"keys\nmeter\n", caption="/attach 1")
    (second,) = await world.sb.wait_for_messages(1, timeout=10)
    (listed,) = await world.say("/files 1")

    assert "lease.pdf" in saved["text"] and "#1" in saved["text"]
    assert "checklist.txt" in second["text"]
    assert "lease.pdf" in listed["text"] and "checklist.txt" in listed["text"]
    assert "lease.pdf · 2.6 KB" in listed["text"]
    assert "checklist.txt · 11 B" in listed["text"]
    files = world.orch.integration("filesystem")
    assert isinstance(files, FilesystemIntegration)
    task = await world.orch.get_task(1, chat_id=1)
    folder = files.files_dir / "tasks" / task.uid / "attachments"
    assert sorted(p.name for p in folder.iterdir()) == ["checklist.txt", "lease.pdf.b64"]
    assert base64.b64decode((folder / "lease.pdf.b64").read_text()) == PDF
    assert (folder / "checklist.txt").read_text() == "keys\nmeter\n"


async def test_a_document_for_no_task_gets_the_how_to(start_bot: StartBot) -> None:
    world = await start_bot(servers=("deltatask", "filesystem"))

    world.sb.send_document(1, "lease.pdf", PDF)
    (reply,) = await world.sb.wait_for_messages(1, timeout=10)

    assert "/attach 12" in reply["text"]


async def test_notes_are_appended_to_the_tasks_notes_file(start_bot: StartBot) -> None:
    world = await start_bot(servers=("deltatask", "filesystem"))
    await world.say("/new Sign the lease")

    (first,) = await world.say("/note 1 Called the landlord")
    await world.say("/note 1 Deposit <paid>")
    (listed,) = await world.say("/files 1")

    assert "Note added to #1" in first["text"]
    assert "Notes: 2" in listed["text"]
    assert "Called the landlord" in listed["text"] and "Deposit &lt;paid&gt;" not in listed["text"]
    assert "Deposit <paid>" in listed["text"]  # escaped on the way out, shown as typed
    files = world.orch.integration("filesystem")
    assert isinstance(files, FilesystemIntegration)
    task = await world.orch.get_task(1, chat_id=1)
    notes = (files.files_dir / "tasks" / task.uid / "notes.md").read_text()
    assert notes.startswith("# Notes on task #1: Sign the lease\n")
    assert notes.count("\n- ") == 2 and notes.rstrip().endswith("Deposit <paid>")
