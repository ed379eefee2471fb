"""A user's first conversation, end to end: chat -> bot -> core -> real MCP servers -> chat."""

from __future__ import annotations

from core.integration import Inspectable
from core.models import OutboxState, TaskStatus
from tests.e2e.conftest import ADMIN, StartBot

FOUR = ("deltatask", "memory", "git", "filesystem")


async def test_start_greets_the_user_by_name(start_bot: StartBot) -> None:
    world = await start_bot()
    (reply,) = await world.say("/start")
    assert "Alice" in reply["text"]
    assert "/new" in reply["text"]


async def test_a_quick_add_is_saved_and_reaches_every_enabled_server(start_bot: StartBot) -> None:
    world = await start_bot(FOUR)
    (reply,) = await world.say("/new Pay rent tomorrow 18:00 #home !1")
    assert "Saved task #1" in reply["text"]
    assert "Pay rent" in reply["text"]
    assert "#home" in reply["text"]
    assert "Sat 05.12 18:00" in reply["text"]  # the configured zone is UTC
    buttons = [b["text"] for row in reply["reply_markup"]["inline_keyboard"] for b in row]
    assert any("Done" in b for b in buttons)

    (task,) = await world.orch.list_tasks(1)
    assert task.priority == 1
    assert task.tags == ("home",)
    states = await world.orch.wait_synced(task.uid, within=30)
    assert states == dict.fromkeys(FOUR, OutboxState.DONE)
    links = await world.orch.store.links(task.uid)
    for name in FOUR:
        integration = world.orch.integrations[name]
        assert isinstance(integration, Inspectable)
        assert await integration.locate(task.uid, links.get(name)), f"not found on {name}"


async def test_list_shows_open_tasks_and_the_done_button_closes_one(start_bot: StartBot) -> None:
    world = await start_bot()
    (card,) = await world.say("/new Buy milk")
    await world.say("/new Call Bob in 2 hours")
    (listing,) = await world.say("/list")
    assert "Buy milk" in listing["text"]
    assert "Call Bob" in listing["text"]

    done = next(
        b["callback_data"]
        for row in card["reply_markup"]["inline_keyboard"]
        for b in row
        if "Done" in b["text"]
    )
    answer = await world.press(card, done)
    assert "Done" in answer.get("text", "")
    edited = world.sb.messages(1)[card["message_id"] - 1]
    assert "Done" in edited["text"] and "Buy milk" in edited["text"]
    assert (await world.orch.get_task(1)).status is TaskStatus.DONE
    (listing,) = await world.say("/list")
    assert "Buy milk" not in listing["text"]


async def test_done_by_command_and_twice_is_harmless(start_bot: StartBot) -> None:
    world = await start_bot()
    await world.say("/new Water plants")
    (first,) = await world.say("/done 1")
    (second,) = await world.say("/done 1")
    assert "Done" in first["text"]
    assert "already done" in second["text"]


async def test_done_for_someone_elses_task_is_not_found(start_bot: StartBot) -> None:
    world = await start_bot()
    await world.say("/new Secret plan", chat_id=1)
    (reply,) = await world.say("/done 1", chat_id=2)
    assert "can't find task #1" in reply["text"]
    assert (await world.orch.get_task(1)).status is TaskStatus.OPEN


async def test_a_date_without_a_title_is_refused_and_nothing_is_saved(start_bot: StartBot) -> None:
    world = await start_bot()
    (reply,) = await world.say("/new tomorrow 18:00")
    assert "needs a title" in reply["text"]
    assert await world.orch.list_tasks(1) == []


async def test_a_past_date_gets_a_suggestion_not_a_wrong_deadline(start_bot: StartBot) -> None:
    world = await start_bot()
    (reply,) = await world.say("/new Report 01.01.2020 10:00")
    assert "in the past" in reply["text"]
    assert "example" in reply["text"]
    assert await world.orch.list_tasks(1) == []


async def test_user_html_is_shown_as_text_not_markup(start_bot: StartBot) -> None:
    world = await start_bot()
    (reply,) = await world.say("/new <b>bold</b> & <script>x</script>")
    assert "<b>bold</b> & <script>x</script>" in reply["text"]
    (task,) = await world.orch.list_tasks(1)
    assert task.title == "<b>bold</b> & <script>x</script>"


async def test_russian_quick_add_is_answered_in_russian(start_bot: StartBot) -> None:
    world = await start_bot()
    (reply,) = await world.say("/new Позвонить маме завтра в 9 #семья", lang="ru")
    assert "Задача #1 сохранена" in reply["text"]
    assert "#семья" in reply["text"]
    (task,) = await world.orch.list_tasks(1)
    assert task.deadline is not None
    assert task.deadline.isoformat() == "2026-12-05T09:00:00+00:00"


async def test_health_is_for_admins_and_lists_every_server(start_bot: StartBot) -> None:
    world = await start_bot(("deltatask", "memory"))
    (refused,) = await world.say("/health", chat_id=5, user_id=5)
    assert "admins only" in refused["text"]
    (table,) = await world.say("/health", chat_id=ADMIN, user_id=ADMIN)
    assert "deltatask ONLINE" in table["text"]
    assert "memory ONLINE" in table["text"]
    assert "backup DISABLED" in table["text"]
