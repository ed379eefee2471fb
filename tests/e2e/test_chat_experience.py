"""The chat experience end to end, in English and Russian: commands, cards, lists, dialogs,
groups, settings and hostile input, through the sandbox against the real bot and store."""

from __future__ import annotations

import asyncio
import csv
import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiogram.types import BotCommandScopeChat

from bot.sandbox.entities import utf16_len
from core.models import TaskStatus
from core.users import UserSettings
from tests.e2e.conftest import FIXED_NOW, BotWorld, StartBot

pytestmark = pytest.mark.timeout(90)

Json = dict[str, Any]
GROUP = -1_001_234
ALICE, BOB, CAROL, DAVE = 11, 12, 13, 14  # author, assignee, member, group admin


def buttons(message: Json) -> dict[str, str]:
    """Button label -> callback data, as the user sees the message now."""
    rows = message.get("reply_markup", {}).get("inline_keyboard", [])
    return {b["text"]: b.get("callback_data", "") for row in rows for b in row}


def button(message: Json, label: str) -> str:
    """The data of the one button whose label contains `label`."""
    found = [data for text, data in buttons(message).items() if label in text]
    assert len(found) == 1, f"{label!r} among {list(buttons(message))}"
    return found[0]


def shown(world: BotWorld, message: Json) -> Json:
    """The message as it is now (after any edits)."""
    chat = message["chat"]["id"]
    return next(m for m in world.sb.messages(chat) if m["message_id"] == message["message_id"])


async def press_forged(world: BotWorld, message: Json, data: str) -> Json:
    """Press data no button of ours carries, as a modified client could send it."""
    markup = message.setdefault("reply_markup", {"inline_keyboard": []})
    markup["inline_keyboard"].append([{"text": "forged", "callback_data": data}])
    return await world.press(message, data)


async def in_group(
    world: BotWorld, line: str, user_id: int, username: str, replies: int = 1
) -> list[Json]:
    return await world.say(
        line,
        chat_id=GROUP,
        user_id=user_id,
        chat_type="group",
        username=username,
        replies=replies,
    )


async def add_tasks(world: BotWorld, chat_id: int, titles: list[str], **fields: Any) -> None:
    for title in titles:
        await world.orch.create_task(title, chat_id=chat_id, author_id=chat_id, **fields)


# -- quick add -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("phrase", "lang", "shown_as", "stored"),
    [
        ("tomorrow 18:00", "en", "Sat 05.12 18:00", "2026-12-05T18:00:00+00:00"),
        ("next friday", "en", "Fri 11.12 09:00", "2026-12-11T09:00:00+00:00"),
        ("in 2 hours", "en", "Fri 04.12 14:00", "2026-12-04T14:00:00+00:00"),
        ("31.12 23:59", "en", "Thu 31.12 23:59", "2026-12-31T23:59:00+00:00"),
        ("завтра в 9", "ru", "Сб 05.12 09:00", "2026-12-05T09:00:00+00:00"),
        ("через 3 дня", "ru", "Пн 07.12 09:00", "2026-12-07T09:00:00+00:00"),
        ("в пятницу", "ru", "Пт 11.12 09:00", "2026-12-11T09:00:00+00:00"),
    ],
)
async def test_a_quick_add_phrase_becomes_the_deadline_the_user_meant(
    start_bot: StartBot, phrase: str, lang: str, shown_as: str, stored: str
) -> None:
    world = await start_bot()
    (reply,) = await world.say(f"/new Call mom {phrase}", lang=lang)
    saved = "Задача #1 сохранена" if lang == "ru" else "Saved task #1"
    assert saved in reply["text"]
    assert "Call mom" in reply["text"]
    assert shown_as in reply["text"]
    (task,) = await world.orch.list_tasks(1)
    assert task.title == "Call mom"
    assert task.deadline is not None and task.deadline.isoformat() == stored


async def test_a_past_date_in_russian_is_refused_in_russian_with_an_example(
    start_bot: StartBot,
) -> None:
    world = await start_bot()
    (reply,) = await world.say("/new Отчёт 01.01.2020 10:00", lang="ru")
    assert "Эта дата уже прошла" in reply["text"]
    assert "Например: завтра 10:00" in reply["text"]
    assert await world.orch.list_tasks(1) == []


async def test_an_ambiguous_date_gets_the_parsers_suggestion(start_bot: StartBot) -> None:
    world = await start_bot()
    (reply,) = await world.say("/new Pay 12/31")
    assert "can't tell which date" in reply["text"]
    assert "31.12 18:00" in reply["text"]
    assert await world.orch.list_tasks(1) == []


# -- hostile input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("line", "expected", "saved"),
    [
        ("/new <b>bold</b> & <i>x", "<b>bold</b> & <i>x", 1),
        ("/new " + "A" * 5000, "too long", 0),
        ("/new 🎉 Party 🎈 tomorrow 18:00", "🎉 Party 🎈", 1),
        ("/new", "What is it?", 0),
        ("/new      ", "What is it?", 0),
        ("/search <script>", "Nothing matches <script>", 0),
        ("/search", "What should I look for?", 0),
        ("/task 99999999999999999999", "Which task?", 0),
        ("/edit 1 colour red", "I can't find task #1", 0),
        ("/tz ../../etc/passwd", "don't know that time zone", 0),
        ("/lang klingon", "English (en) and Russian (ru)", 0),
        ("hello there", "To add a task", 0),
    ],
)
async def test_hostile_input_gets_a_clear_reply_and_saves_only_what_it_should(
    start_bot: StartBot, line: str, expected: str, saved: int
) -> None:
    world = await start_bot()
    (reply,) = await world.say(line)
    assert expected in reply["text"]
    assert len(await world.orch.list_tasks(1)) == saved


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("t1:done:999999", "can't find task #999999"),
        ("garbage", "out of date"),
        ("t1:done:abc", "out of date"),
        ("t1:nuke:1", "out of date"),
        ("t0:done:1", "out of date"),
        ("l1:tag:0:ffffffffff", "out of date"),
        ("w1:skip:deadline", "out of date"),
        ("e1:1:title", "out of date"),
    ],
)
async def test_a_forged_or_stale_button_gets_a_short_answer_and_changes_nothing(
    start_bot: StartBot, data: str, expected: str
) -> None:
    world = await start_bot()
    (card,) = await world.say("/new Keep me")
    answer = await press_forged(world, card, data)
    assert expected in (answer["text"] or "")
    assert (await world.orch.get_task(1)).status is TaskStatus.OPEN
    (listing,) = await world.say("/list")  # and the bot is still fine
    assert "Keep me" in listing["text"]


# -- lists ---------------------------------------------------------------------------------------


async def test_a_long_list_is_paged_with_buttons_that_move_between_pages(
    start_bot: StartBot,
) -> None:
    world = await start_bot()
    await add_tasks(world, 1, [f"Task {n:02d}" for n in range(1, 24)])
    (listing,) = await world.say("/list")
    assert "Open tasks</b>" not in listing["text"]  # markup was applied, not shown
    assert "Open tasks (23)" in listing["text"]
    assert "Task 10" in listing["text"] and "Task 11" not in listing["text"]
    assert "1 / 3" in buttons(listing)

    answer = await world.press(listing, button(listing, "Next"))
    assert answer["text"] == "Page 2 of 3"
    page = shown(world, listing)
    assert "Task 11" in page["text"] and "Task 20" in page["text"]
    assert "Task 10" not in page["text"]

    await world.press(page, button(page, "Next"))
    page = shown(world, listing)
    assert "Task 23" in page["text"] and "Next ›" not in buttons(page)

    again = await world.press(page, button(page, "3 / 3"))  # same page: nothing to edit
    assert again["text"] == "Page 3 of 3"
    await world.press(page, button(page, "Back"))
    assert "Task 11" in shown(world, listing)["text"]


async def test_list_views_show_today_overdue_a_tag_and_all(start_bot: StartBot) -> None:
    world = await start_bot()
    await add_tasks(world, 1, ["Late report"], deadline=FIXED_NOW - timedelta(hours=3))
    await add_tasks(world, 1, ["Evening call"], deadline=FIXED_NOW + timedelta(hours=6))
    await add_tasks(world, 1, ["Tomorrow gym"], deadline=FIXED_NOW + timedelta(days=1))
    await add_tasks(world, 1, ["Fix printer"], tags=["work"])
    await add_tasks(world, 1, ["Old chore"])
    await world.orch.complete_task(5)

    (today,) = await world.say("/list today")
    assert "Due today (2)" in today["text"]
    assert "Late report" in today["text"] and "Evening call" in today["text"]
    assert "Tomorrow gym" not in today["text"]
    (overdue,) = await world.say("/list overdue")
    assert "Late report ⚠️" in overdue["text"].replace(" — Fri 04.12 09:00", "")
    assert "Evening call" not in overdue["text"]
    (tagged,) = await world.say("/list #work")
    assert "Tagged #work (1)" in tagged["text"] and "Fix printer" in tagged["text"]
    (everything,) = await world.say("/list all")
    assert "All tasks (5)" in everything["text"] and "✔️ #5 Old chore" in everything["text"]
    (open_,) = await world.say("/list")
    assert "Old chore" not in open_["text"]

    await world.press(open_, button(open_, "Overdue"))
    assert "Overdue (1)" in shown(world, open_)["text"]


async def test_russian_list_words_and_a_card_button_from_the_list(start_bot: StartBot) -> None:
    world = await start_bot()
    await add_tasks(world, 7, ["Купить хлеб"], tags=["дом"])
    (listing,) = await world.say("/list #дом", chat_id=7, lang="ru")
    assert "С тегом #дом (1)" in listing["text"]
    await world.press(listing, button(listing, "#1"))
    (card,) = await world.sb.wait_for_messages(7, timeout=10)
    assert card["text"].startswith("📌 #1 Купить хлеб")
    assert any("Готово" in label for label in buttons(card))


async def test_search_finds_words_in_any_case_and_splits_a_long_answer(
    start_bot: StartBot,
) -> None:
    world = await start_bot()
    await add_tasks(world, 1, [f"Оплатить аренду {n} " + "д" * 120 for n in range(40)])
    await add_tasks(world, 1, ["Unrelated"])
    first, second = await world.say("/search АРЕНДУ", replies=2)
    assert "Found (40)" in first["text"]
    assert all(utf16_len(m["text"]) <= 4096 for m in (first, second))
    found = (first["text"] + "\n" + second["text"]).count("Оплатить аренду")
    assert found == 40
    (none,) = await world.say("/search nothing-like-this")
    assert "Nothing matches" in none["text"]


# -- the card ------------------------------------------------------------------------------------


async def test_the_card_offers_done_snooze_timer_edit_and_delete(start_bot: StartBot) -> None:
    world = await start_bot()
    await world.say("/new Pay rent tomorrow 18:00 #home")
    (card,) = await world.say("/task 1")
    assert card["text"].startswith("📌 #1 Pay rent")
    labels = " ".join(buttons(card))
    for label in ("Done", "+1 h", "Start timer", "Edit", "Delete"):
        assert label in labels

    snoozed = await world.press(card, button(card, "+1 h"))
    assert "now due Sat 05.12 19:00" in snoozed["text"]
    assert "Sat 05.12 19:00" in shown(world, card)["text"]
    task = await world.orch.get_task(1)
    assert task.deadline == datetime(2026, 12, 5, 19, 0, tzinfo=UTC)

    timer = await world.press(card, button(card, "Start timer"))
    assert timer["text"] == "Time tracking is not enabled."


async def test_delete_asks_first_and_keep_brings_the_card_back(start_bot: StartBot) -> None:
    world = await start_bot()
    (card,) = await world.say("/new Water plants")
    await world.press(card, button(card, "Delete"))
    asking = shown(world, card)
    assert "Delete task #1 Water plants?" in asking["text"]
    await world.press(asking, button(asking, "Keep it"))
    assert "Done" in " ".join(buttons(shown(world, card)))
    assert (await world.orch.get_task(1)).status is TaskStatus.OPEN

    (question,) = await world.say("/delete 1")
    answer = await world.press(question, button(question, "Yes, delete"))
    assert "Deleted task #1" in answer["text"]
    assert "Deleted task #1 Water plants" in shown(world, question)["text"]
    assert await world.orch.list_tasks(1) == []
    (gone,) = await world.say("/task 1")
    assert "can't find task #1" in gone["text"]


async def test_deadline_and_edit_commands_change_one_field_each(start_bot: StartBot) -> None:
    world = await start_bot()
    await world.say("/new Draft the plan")
    (set_,) = await world.say("/deadline 1 next friday 10:00")
    assert "now due Fri 11.12 10:00" in set_["text"]
    (edited,) = await world.say("/edit 1 title Draft the <big> plan")
    assert "Updated #1 Draft the <big> plan" in edited["text"]
    (edited,) = await world.say("/edit 1 priority 1")
    assert "priority 1" in edited["text"]
    (edited,) = await world.say("/edit 1 теги #work #q4")
    assert "#work · #q4" in edited["text"]
    (bad,) = await world.say("/deadline 1 someday maybe")
    assert "can't find a date" in bad["text"]
    (cleared,) = await world.say("/deadline 1 none")
    assert "no deadline now" in cleared["text"]
    task = await world.orch.get_task(1)
    assert (task.title, task.priority, task.tags, task.deadline) == (
        "Draft the <big> plan",
        1,
        ("work", "q4"),
        None,
    )


async def test_the_edit_dialog_picks_a_field_by_button_and_takes_the_value(
    start_bot: StartBot,
) -> None:
    world = await start_bot()
    (card,) = await world.say("/new Call the bank")
    await world.press(card, button(card, "Edit"))
    (picker,) = await world.sb.wait_for_messages(1, timeout=10)
    assert "What should change in #1 Call the bank?" in picker["text"]
    await world.press(picker, button(picker, "Deadline"))
    (ask,) = await world.sb.wait_for_messages(1, timeout=10)
    assert "When is #1 due?" in ask["text"]
    (done,) = await world.say("in 2 hours")
    assert "Updated #1 Call the bank" in done["text"] and "Fri 04.12 14:00" in done["text"]
    assert buttons(shown(world, ask)) == {}  # the answered prompt lost its buttons


# -- the new-task dialog -------------------------------------------------------------------------


async def test_the_new_task_dialog_asks_title_deadline_and_tags(start_bot: StartBot) -> None:
    world = await start_bot()
    (ask_title,) = await world.say("/new")
    assert "What is it?" in ask_title["text"] and "Cancel" in " ".join(buttons(ask_title))
    (ask_when,) = await world.say("Buy bread")
    assert "When is it due?" in ask_when["text"] and "Skip" in " ".join(buttons(ask_when))
    (bad,) = await world.say("whenever")
    assert "can't find a date" in bad["text"]
    (ask_tags,) = await world.say("tomorrow 18:00")
    assert "Tags and priority?" in ask_tags["text"]
    (card,) = await world.say("#home !1")
    assert "Saved task #1: Buy bread" in card["text"]
    assert "Sat 05.12 18:00" in card["text"] and "#home" in card["text"]
    task = await world.orch.get_task(1)
    assert (task.priority, task.tags) == (1, ("home",))


async def test_answers_typed_faster_than_the_bot_replies_are_taken_in_order(
    start_bot: StartBot,
) -> None:
    world = await start_bot()
    for line in ("/new", "Buy bread", "tomorrow 18:00", "#home !2", "/list"):
        world.sb.send_text(1, line)  # no waiting between them

    replies = await world.sb.wait_for_messages(1, count=5, timeout=15)

    assert "What is it?" in replies[0]["text"]
    assert "When is it due?" in replies[1]["text"]
    assert "Tags and priority?" in replies[2]["text"]
    assert "Saved task #1: Buy bread" in replies[3]["text"]
    assert "Open tasks (1)" in replies[4]["text"] and "Buy bread" in replies[4]["text"]
    task = await world.orch.get_task(1)
    assert (task.priority, task.tags) == (2, ("home",))


async def test_a_restart_in_the_middle_of_the_dialog_resumes_it(
    start_bot: StartBot, tmp_path: Path
) -> None:
    first = await start_bot(data_dir=tmp_path / "shared")
    await first.say("/new")
    (ask_when,) = await first.say("Buy bread")
    assert "When is it due?" in ask_when["text"]
    await first.stop()

    second = await start_bot(data_dir=tmp_path / "shared")
    (ask_tags,) = await second.say("tomorrow 18:00")
    assert "Tags and priority?" in ask_tags["text"]
    (card,) = await second.say("#home")
    assert "Saved task #1: Buy bread" in card["text"]
    (listing,) = await second.say("/cancel")
    assert "nothing to cancel" in listing["text"]  # the finished dialog left nothing behind


async def test_the_dialog_can_skip_steps_in_russian(start_bot: StartBot) -> None:
    world = await start_bot()
    await world.say("/new", chat_id=8, lang="ru")
    (ask_when,) = await world.say("Позвонить Ивану", chat_id=8, lang="ru")
    await world.press(ask_when, button(ask_when, "Пропустить"))
    (ask_tags,) = await world.sb.wait_for_messages(8, timeout=10)
    assert "Теги и приоритет?" in ask_tags["text"]
    await world.press(ask_tags, button(ask_tags, "Пропустить"))
    (card,) = await world.sb.wait_for_messages(8, timeout=10)
    assert "Задача #1 сохранена: Позвонить Ивану" in card["text"]
    assert (await world.orch.get_task(1)).deadline is None


async def test_cancel_ends_the_dialog_and_its_old_buttons_go_stale(start_bot: StartBot) -> None:
    world = await start_bot()
    await world.say("/new")
    (ask_when,) = await world.say("Never mind")
    skip = button(ask_when, "Skip")
    await world.press(ask_when, button(ask_when, "Cancel"))
    assert "Cancelled" in shown(world, ask_when)["text"]
    assert await world.orch.list_tasks(1) == []
    answer = await press_forged(world, shown(world, ask_when), skip)
    assert "out of date" in answer["text"]
    (hint,) = await world.say("Just text now")
    assert "To add a task" in hint["text"]

    await world.say("/new")
    (listing,) = await world.say("/list")  # a command mid-dialog is still a command
    assert "No open tasks" in listing["text"]
    (cancelled,) = await world.say("/cancel")
    assert "Cancelled" in cancelled["text"]
    (nothing,) = await world.say("/cancel")
    assert "nothing to cancel" in nothing["text"]


# -- groups --------------------------------------------------------------------------------------


async def test_in_a_group_the_assignee_is_mentioned_and_may_complete(start_bot: StartBot) -> None:
    world = await start_bot()
    (card,) = await in_group(world, "/new@taskbot_sandbox_bot Review PR @bob #dev", ALICE, "alice")
    assert "Review PR" in card["text"] and "@bob" in card["text"]
    (refused,) = await in_group(world, "/done 1", CAROL, "carol")
    assert "Only the task's author, its assignee or a group admin" in refused["text"]
    (done,) = await in_group(world, "/done@taskbot_sandbox_bot 1", BOB, "bob")
    assert "Done: #1 Review PR" in done["text"]
    task = await world.orch.get_task(1)
    assert (task.chat_id, task.author_id, task.status) == (GROUP, ALICE, TaskStatus.DONE)


async def test_a_member_cannot_delete_someone_elses_task_but_an_admin_can(
    start_bot: StartBot,
) -> None:
    world = await start_bot()
    world.sb.group_admins.add(DAVE)
    (card,) = await in_group(world, "/new Order pizza", ALICE, "alice")
    (refused,) = await in_group(world, "/delete 1", CAROL, "carol")
    assert "Only the task's author" in refused["text"]
    answer = await world.press(card, button(card, "Delete"), user_id=CAROL)
    assert "Only the task's author" in answer["text"] and answer["show_alert"]
    assert "Order pizza" in shown(world, card)["text"]  # the card did not change

    (question,) = await in_group(world, "/delete 1", DAVE, "dave")
    await world.press(question, button(question, "Yes, delete"), user_id=DAVE)
    assert "Deleted task #1" in shown(world, question)["text"]
    assert await world.orch.list_tasks(GROUP) == []


async def test_a_command_for_another_bot_is_ignored_in_a_group(start_bot: StartBot) -> None:
    world = await start_bot()
    world.sb.send_text(GROUP, "/new@other_bot Not ours", user_id=ALICE, chat_type="group")
    world.sb.send_text(GROUP, "just chatting", user_id=ALICE, chat_type="group")
    (reply,) = await in_group(world, "/new@taskbot_sandbox_bot Ours", ALICE, "alice")
    assert "Saved task #1: Ours" in reply["text"]
    (task,) = await world.orch.list_tasks(GROUP)
    assert task.title == "Ours"


async def test_the_dialog_in_a_group_asks_for_a_reply(start_bot: StartBot) -> None:
    world = await start_bot()
    (ask,) = await in_group(world, "/new", ALICE, "alice")
    assert "Reply to this message" in ask["text"]


# -- settings ------------------------------------------------------------------------------------


async def test_tz_changes_how_deadlines_are_read_and_shown(start_bot: StartBot) -> None:
    world = await start_bot()
    await world.say("/new Standup tomorrow 18:00")
    (set_,) = await world.say("/tz europe/moscow")
    assert "Time zone: Europe/Moscow" in set_["text"] and "15:00" in set_["text"]
    (card,) = await world.say("/task 1")
    assert "Sat 05.12 21:00" in card["text"]  # 18:00 UTC is 21:00 in Moscow
    (card,) = await world.say("/new Retro tomorrow 18:00")
    assert "Sat 05.12 18:00" in card["text"]
    assert (await world.orch.get_task(2)).deadline == datetime(2026, 12, 5, 15, 0, tzinfo=UTC)
    prefs = await UserSettings(world.orch.store).get(1)
    assert prefs.tz == "Europe/Moscow"
    (bad,) = await world.say("/tz Mars/Olympus")
    assert "don't know that time zone" in bad["text"] and "Europe/Moscow" in bad["text"]
    (current,) = await world.say("/tz")
    assert "Your time zone: Europe/Moscow" in current["text"]


async def test_lang_switches_the_language_and_the_private_command_menu(
    start_bot: StartBot,
) -> None:
    world = await start_bot()
    (switched,) = await world.say("/lang ru")
    assert switched["text"] == "Язык: русский."
    (listing,) = await world.say("/list")
    assert "Открытых задач нет" in listing["text"]
    assert world.runtime.bot is not None
    menu = await world.runtime.bot.get_my_commands(scope=BotCommandScopeChat(chat_id=1))
    assert "Новая задача" in [c.description for c in menu]
    (back,) = await world.say("/lang en")
    assert back["text"] == "Language: English."
    (listing,) = await world.say("/list")
    assert "No open tasks" in listing["text"]
    assert (await UserSettings(world.orch.store).get(1)).lang == "en"


async def test_telegrams_language_picks_the_reply_language_and_both_menus_exist(
    start_bot: StartBot,
) -> None:
    world = await start_bot()
    (reply,) = await world.say("/help", chat_id=9, lang="ru-RU")
    assert "Настройки" in reply["text"]
    assert world.runtime.bot is not None
    for code, new in ((None, "Add a task"), ("ru", "Новая задача")):
        menu = await world.runtime.bot.get_my_commands(language_code=code)
        names = [c.command for c in menu]
        assert {"new", "list", "task", "edit", "delete", "search", "tz", "lang"} <= set(names)
        assert {"deadline", "export", "cancel", "help", "start"} <= set(names)
        assert new in [c.description for c in menu]


# -- export --------------------------------------------------------------------------------------


async def test_export_sends_json_and_csv_files_of_the_chats_tasks(start_bot: StartBot) -> None:
    world = await start_bot()
    await world.say("/tz Europe/Moscow")
    await world.say("/new Pay rent tomorrow 18:00 #home !1")
    await world.say("/new =SUM(A1) формула")
    await world.say("/done 2")
    await world.say("/new Secret elsewhere", chat_id=2)
    json_doc, csv_doc = await world.say("/export", replies=2)
    assert json_doc["caption"] == "📦 Tasks of this chat: 2"
    assert json_doc["document"]["file_name"].endswith(".json")

    exported = json.loads(world.sb.file_bytes(json_doc["document"]["file_id"]))
    assert exported["timezone"] == "Europe/Moscow"
    first, second = exported["tasks"]
    assert (first["title"], first["tags"], first["priority"]) == ("Pay rent", ["home"], 1)
    assert first["deadline_utc"] == "2026-12-05T15:00:00+00:00"
    assert first["deadline_local"] == "2026-12-05T18:00:00+03:00"
    assert (second["title"], second["status"]) == ("=SUM(A1) формула", "done")

    raw = world.sb.file_bytes(csv_doc["document"]["file_id"]).decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(raw)))
    assert [r["title"] for r in rows] == ["Pay rent", "'=SUM(A1) формула"]
    assert rows[0]["tags"] == "home" and rows[0]["deadline_local"].startswith("2026-12-05T18")


async def test_export_of_an_empty_chat_says_so(start_bot: StartBot) -> None:
    world = await start_bot()
    (reply,) = await world.say("/export")
    assert "nothing to export" in reply["text"]


async def test_export_in_a_format_it_lacks_says_which_it_has(start_bot: StartBot) -> None:
    world = await start_bot()
    await world.say("/new Pay rent")
    (reply,) = await world.say("/export pdf")
    assert reply["text"].startswith("I can't export pdf.")
    assert "/export ics" in reply["text"]
    assert "document" not in reply  # no file sent


# -- access --------------------------------------------------------------------------------------


async def test_over_the_rate_limit_the_user_is_told_to_wait_once(start_bot: StartBot) -> None:
    world = await start_bot(per_minute=3)
    for _ in range(3):
        (reply,) = await world.say("/help")
        assert "/new" in reply["text"]
    world.sb.send_text(1, "/help")
    world.sb.send_text(1, "/help")
    (refused,) = await world.sb.wait_for_messages(1, timeout=10)
    assert "You're sending commands too fast. Please wait" in refused["text"]
    await asyncio.sleep(0.3)
    bot_id = world.sb.bot_user["id"]
    later = [
        m for m in world.sb.messages(1, since=refused["message_id"]) if m["from"]["id"] == bot_id
    ]
    assert later == []  # the second refused message got no second warning
    (other,) = await world.say("/help", chat_id=2)  # another user is not affected
    assert "Tasks" in other["text"]


async def test_a_user_outside_the_allowlist_is_told_the_bot_is_private(
    start_bot: StartBot,
) -> None:
    world = await start_bot(allowed=(5,))
    (refused,) = await world.say("/new Sneak in", chat_id=6)
    assert refused["text"] == "Sorry, this bot is private."
    (welcome,) = await world.say("/new Allowed", chat_id=5)
    assert "Saved task #1: Allowed" in welcome["text"]
