"""Reminders end to end: the real runtime, store and scheduler, the sandbox as Telegram.

Time is moved by setting the runtime's clock and running a tick to completion; the
scheduler's own one-second ticks run beside it on the same clock, and claims keep the two
from ever sending one reminder twice.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.delivery import DeliveryLimits
from core.models import TaskStatus
from core.reminders import ReminderService, ReminderState
from core.settings import DEFAULT_CONFIG_PATH
from tests.e2e.conftest import FIXED_NOW, BotWorld, Json, StartBot

pytestmark = pytest.mark.timeout(90)

TOMORROW_18 = datetime(2026, 12, 5, 18, 0, tzinfo=UTC)  # "tomorrow 18:00" from FIXED_NOW


def service(world: BotWorld) -> ReminderService:
    assert world.runtime.reminders is not None
    return world.runtime.reminders


async def at(world: BotWorld, moment: datetime) -> None:
    """Move the bot's clock to `moment` and run one reminder tick until its sends settle."""
    world.runtime.clock = lambda: moment
    await service(world).tick(moment)
    await service(world).wait_idle()


def from_bot(world: BotWorld, chat_id: int) -> list[Json]:
    bot_id = world.sb.bot_user["id"]
    return [m for m in world.sb.messages(chat_id) if m["from"]["id"] == bot_id]


def buttons(message: Json) -> dict[str, str]:
    rows = message.get("reply_markup", {}).get("inline_keyboard", [])
    return {b["text"]: b["callback_data"] for row in rows for b in row}


async def test_a_reminder_card_comes_an_hour_before_and_at_the_deadline(
    start_bot: StartBot,
) -> None:
    world = await start_bot(())
    await world.say("/new Pay rent tomorrow 18:00 #home")

    await at(world, TOMORROW_18 - timedelta(hours=1, seconds=1))
    assert len(from_bot(world, 1)) == 1  # only the "saved" reply so far
    await at(world, TOMORROW_18 - timedelta(hours=1))
    (soon,) = await world.sb.wait_for_messages(1, timeout=10)
    await at(world, TOMORROW_18)
    (due,) = await world.sb.wait_for_messages(1, timeout=10)

    assert soon["text"].startswith("⏰ #1 Pay rent")
    assert "in 1 h" in soon["text"]
    assert due["text"] == "⏰ Due now: #1 Pay rent"
    assert list(buttons(due)) == ["✅ Done", "💤 15 min", "💤 1 h", "💤 Tomorrow"]

    await world.press(due, buttons(due)["✅ Done"])
    shown_card = world.sb.messages(1)[due["message_id"] - 1]
    await world.sb.wait_until(lambda: "Done:" in shown_card["text"], 10, "the card says done")
    assert (await world.orch.get_task(1)).status is TaskStatus.DONE


async def test_snoozing_for_15_minutes_reminds_again_15_minutes_later(
    start_bot: StartBot,
) -> None:
    world = await start_bot(())
    await world.say("/new Pay rent tomorrow 18:00")
    await at(world, TOMORROW_18)
    (card,) = await world.sb.wait_for_messages(1, timeout=10)

    world.runtime.clock = lambda: TOMORROW_18 + timedelta(minutes=1)
    answer = await world.press(card, buttons(card)["💤 15 min"])
    assert "18:16" in answer["text"]
    shown_card = world.sb.messages(1)[card["message_id"] - 1]
    await world.sb.wait_until(lambda: "reply_markup" not in shown_card, 10, "buttons gone")
    assert "Snoozed until" in shown_card["text"]

    shown = len(from_bot(world, 1))
    await at(world, TOMORROW_18 + timedelta(minutes=15, seconds=59))
    assert len(from_bot(world, 1)) == shown
    await at(world, TOMORROW_18 + timedelta(minutes=16))
    (again,) = await world.sb.wait_for_messages(1, timeout=10)
    await at(world, TOMORROW_18 + timedelta(minutes=40))

    assert "Pay rent" in again["text"] and "(late)" not in again["text"]
    assert len(from_bot(world, 1)) == shown + 1


async def test_a_restart_between_scheduling_and_the_fire_time_still_delivers_once(
    start_bot: StartBot, tmp_path: Path
) -> None:
    data = tmp_path / "shared"
    first = await start_bot((), data_dir=data)
    await first.say("/new Pay rent tomorrow 18:00")
    await first.stop()
    assert len(from_bot(first, 1)) == 1  # nothing was due before the stop

    second = await start_bot((), data_dir=data)
    await second.say("/remind")  # the fresh sandbox learns the chat when the user writes
    await at(second, TOMORROW_18 - timedelta(hours=1))
    await at(second, TOMORROW_18)
    await at(second, TOMORROW_18 + timedelta(minutes=1))

    cards = from_bot(second, 1)[1:]
    assert [c["text"].split("\n")[0] for c in cards] == [
        "⏰ #1 Pay rent",
        "⏰ Due now: #1 Pay rent",
    ]


async def test_a_reminder_missed_while_the_bot_was_down_is_sent_once_marked_late(
    start_bot: StartBot, tmp_path: Path
) -> None:
    data = tmp_path / "shared"
    first = await start_bot((), data_dir=data)
    await first.say("/new Pay rent tomorrow 18:00")
    await first.stop()

    second = await start_bot((), data_dir=data)
    await second.say("/remind")
    # Back three hours after the deadline: the scheduler's own tick finds the missed ones.
    second.runtime.clock = lambda: TOMORROW_18 + timedelta(hours=3)
    (late,) = await second.sb.wait_for_messages(1, timeout=10)
    await at(second, TOMORROW_18 + timedelta(hours=3, minutes=5))

    assert late["text"].startswith("⏰ (late) Due now: #1 Pay rent")
    assert len(from_bot(second, 1)) == 2  # the /remind answer and one late card
    task = await second.orch.get_task(1)
    rows = await service(second).store.for_task(task.uid)
    assert [(r.state, r.late) for r in rows] == [(ReminderState.SENT, True)] * 2


async def test_completing_a_recurring_task_creates_the_next_occurrence(
    start_bot: StartBot,
) -> None:
    world = await start_bot(())
    (card,) = await world.say("/new Standup every monday 9:00 #team")
    assert "🔁 every Mon 09:00" in card["text"]  # the card says it repeats
    monday = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)
    (first,) = await world.orch.list_tasks(1)
    assert first.deadline == monday

    await at(world, monday)
    (card,) = await world.sb.wait_for_messages(1, timeout=10)
    await world.press(card, buttons(card)["✅ Done"])

    (successor,) = await world.orch.list_tasks(1)
    assert successor.id == 2
    assert successor.title == "Standup" and successor.tags == ("team",)
    assert successor.deadline == monday + timedelta(days=7)
    assert successor.recurrence == first.recurrence == "FREQ=WEEKLY;BYDAY=MO;BYHOUR=9;BYMINUTE=0"
    await at(world, monday + timedelta(days=7))
    (next_card,) = await world.sb.wait_for_messages(1, timeout=10)
    assert next_card["text"] == "⏰ Due now: #2 Standup"


async def test_changing_a_deadline_moves_its_reminder(start_bot: StartBot) -> None:
    world = await start_bot(())
    await world.say("/new Pay rent tomorrow 18:00")
    await world.orch.update_task(1, chat_id=1, deadline=TOMORROW_18 + timedelta(hours=2))

    await at(world, TOMORROW_18)
    assert len(from_bot(world, 1)) == 1
    await at(world, TOMORROW_18 + timedelta(hours=2))
    (card,) = await world.sb.wait_for_messages(1, timeout=10)

    assert card["text"] == "⏰ Due now: #1 Pay rent"


async def test_remind_shows_and_changes_when_reminders_come(start_bot: StartBot) -> None:
    world = await start_bot(())
    await world.say("/new Pay rent tomorrow 18:00")

    (shown,) = await world.say("/remind")
    (saved,) = await world.say("/remind 1d 15m")
    (refused,) = await world.say("/remind soon")
    (russian,) = await world.say("/remind 1d 15m", chat_id=2, lang="ru")

    assert "1 h before and at the deadline" in shown["text"]
    assert "1 d, 15 min before and at the deadline" in saved["text"]
    assert "1d, 2h or 15m" in refused["text"]
    assert "напоминаю за 1 д, 15 мин и в момент срока" in russian["text"]
    task = await world.orch.get_task(1)
    rows = await service(world).store.for_task(task.uid)
    pending = [r.fire_at for r in rows if r.state is ReminderState.PENDING]
    assert pending == [
        TOMORROW_18 - timedelta(days=1),
        TOMORROW_18 - timedelta(minutes=15),
        TOMORROW_18,
    ]


async def test_a_flood_of_500_due_reminders_respects_the_rate_limits(
    start_bot: StartBot, caplog: pytest.LogCaptureFixture
) -> None:
    world = await start_bot(())
    chats = list(range(1, 101))
    for chat in chats:
        await world.say("/remind", chat_id=chat)
    due = FIXED_NOW + timedelta(minutes=30)  # too close for the "1 h before" reminder
    for chat in chats:
        for n in range(5):
            await world.orch.create_task(f"Flood {chat}.{n}", deadline=due, chat_id=chat)
    world.sb.set_rate_limit(global_per_second=60, per_chat_per_second=2)
    assert world.runtime.delivery is not None
    world.runtime.delivery.set_limits(DeliveryLimits(global_per_second=60, per_chat_per_second=2))
    calls_before = len(world.sb.calls)

    caplog.set_level(logging.WARNING, logger="taskbot.delivery")
    await at(world, due)

    for chat in chats:  # every card arrived, once, in the order the tasks were made
        titles = [m["text"].removeprefix("⏰ Due now: ") for m in from_bot(world, chat)[1:]]
        assert titles == [f"#{(chat - 1) * 5 + n + 1} Flood {chat}.{n}" for n in range(5)]
    sends = [c for c in world.sb.calls[calls_before:] if c[0] == "sendMessage"]
    throttled = len(sends) - 500
    honoured = [r for r in caplog.records if r.getMessage() == "delivery.retry_after"]
    assert throttled == len(honoured)  # every 429 there was got waited out and retried
    states = [
        r.state
        for chat in chats
        for t in await world.orch.list_tasks(chat)
        for r in await service(world).store.for_task(t.uid)
    ]
    assert states == [ReminderState.SENT] * 500


async def test_a_blocked_chat_is_marked_inactive_and_not_retried(
    start_bot: StartBot, caplog: pytest.LogCaptureFixture
) -> None:
    world = await start_bot(())
    await world.say("/new Pay rent tomorrow 18:00")
    await world.say("/new Call Bob tomorrow 20:00")
    world.sb.block_chat(1)
    caplog.set_level(logging.WARNING, logger="taskbot.delivery")

    await at(world, TOMORROW_18)
    await at(world, TOMORROW_18 + timedelta(hours=2))

    sends = [c for c in world.sb.calls if c[0] == "sendMessage" and str(c[1]["chat_id"]) == "1"]
    assert len(sends) == 2 + 1  # two "saved" replies, then one 403 and no more requests
    assert [r.getMessage() for r in caplog.records].count("delivery.forbidden") == 1
    assert await service(world).store.inactive_chats() == {1}

    world.sb.unblock_chat(1)
    await world.say("/remind")  # the user is back: the chat may be written to again
    assert await service(world).store.inactive_chats() == set()
    await world.orch.update_task(2, chat_id=1, deadline=TOMORROW_18 + timedelta(hours=4))
    await at(world, TOMORROW_18 + timedelta(hours=4))
    (card,) = await world.sb.wait_for_messages(1, timeout=10)
    assert card["text"] == "⏰ Due now: #2 Call Bob"


async def test_a_reminder_fires_once_at_nine_berlin_time_across_the_dst_switch(
    start_bot: StartBot, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = json.loads(DEFAULT_CONFIG_PATH.read_text(encoding="utf-8"))
    config["defaults"] = {"timezone": "Europe/Berlin", "language": "en"}
    path = tmp_path / "berlin.json"
    path.write_text(json.dumps(config), encoding="utf-8")
    monkeypatch.setenv("TASKBOT_CONFIG", str(path))
    world = await start_bot((), now=datetime(2026, 3, 28, 10, 0, tzinfo=UTC))
    await world.say("/new Standup every day 9:00")
    (task,) = await world.orch.list_tasks(1)
    assert task.deadline == datetime(2026, 3, 29, 7, 0, tzinfo=UTC)  # 09:00 CEST

    seen: list[tuple[datetime, str]] = []
    moment = datetime(2026, 3, 29, 0, 0, tzinfo=UTC)  # 01:00 CET, before the jump
    while moment <= datetime(2026, 3, 29, 9, 0, tzinfo=UTC):
        before = len(from_bot(world, 1))
        await at(world, moment)
        seen += [(moment, m["text"]) for m in from_bot(world, 1)[before:]]
        moment += timedelta(minutes=5)

    assert [(when, text.split("\n")[0]) for when, text in seen] == [
        (datetime(2026, 3, 29, 6, 0, tzinfo=UTC), "⏰ #1 Standup"),  # 08:00 CEST
        (datetime(2026, 3, 29, 7, 0, tzinfo=UTC), "⏰ Due now: #1 Standup"),  # 09:00 CEST
    ]
    assert "29.03 09:00" in seen[0][1]


async def test_overdue_tasks_come_back_in_one_morning_digest(start_bot: StartBot) -> None:
    world = await start_bot(())
    await world.say("/new Pay rent tomorrow 18:00")
    await world.say("/new Call Bob 07.12 10:00")
    await at(world, TOMORROW_18)  # the rent's own reminder goes out first
    await world.sb.wait_for_messages(1, timeout=10)

    await at(world, datetime(2026, 12, 6, 8, 59, tzinfo=UTC))
    assert len(from_bot(world, 1)) == 3
    await at(world, datetime(2026, 12, 6, 9, 0, tzinfo=UTC))
    (digest,) = await world.sb.wait_for_messages(1, timeout=10)
    await at(world, datetime(2026, 12, 6, 15, 0, tzinfo=UTC))

    assert digest["text"].startswith("⏰ Overdue (1)")
    assert "#1 Pay rent" in digest["text"] and "Call Bob" not in digest["text"]
    assert len(from_bot(world, 1)) == 4  # one digest a day, not one per tick
