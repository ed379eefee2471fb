"""The delivery queue against the real sandbox over HTTP, on a clock both sides share.

The sandbox judges rate limits by the same fake clock the queue paces by, and the queue's
sleeps advance that clock instead of waiting, so minutes of pacing run in a moment while
every request is a real Bot API call.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiogram import Bot
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.methods import SendMessage

from bot.delivery import DeliveryLimits, DeliveryQueue
from bot.notifier import Notifier
from bot.sandbox import TelegramSandbox
from core.models import ServerStatus, Task, TaskStatus, utcnow
from core.reminders import DeliveryOutcome, SqliteReminderStore
from core.store import SqliteTaskStore

pytestmark = pytest.mark.timeout(60)

TOKEN = "4242:delivery-test-token"
GROUP = -100_200


class FakeTime:
    """Monotonic seconds that move only when someone sleeps."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.now += seconds
        await asyncio.sleep(0)


@dataclass(frozen=True)
class Request:
    chat_id: int
    text: str
    start: float
    end: float
    error: str | None  # the exception aiogram raised, by class name


@dataclass
class Sends:
    """Request middleware: every sendMessage the bot made, with fake start and end times."""

    fake: FakeTime
    log: list[Request] = field(default_factory=list)
    logged: asyncio.Event = field(default_factory=asyncio.Event)  # set at each entry

    async def __call__(self, make_request: Any, bot: Bot, method: Any) -> Any:
        if not isinstance(method, SendMessage):
            return await make_request(bot, method)
        began, error = self.fake(), None
        try:
            return await make_request(bot, method)
        except Exception as exc:
            error = type(exc).__name__
            raise
        finally:
            self.log.append(Request(int(method.chat_id), method.text, began, self.fake(), error))
            self.logged.set()

    def to(self, chat_id: int) -> list[Request]:
        return [r for r in self.log if r.chat_id == chat_id]


@dataclass
class Rig:
    sb: TelegramSandbox
    bot: Bot
    fake: FakeTime
    sends: Sends

    def queue(self, **kwargs: Any) -> DeliveryQueue:
        return DeliveryQueue(self.bot, clock=self.fake, sleep=self.fake.sleep, **kwargs)

    def chats(self, *chat_ids: int) -> None:
        """Make the chats exist on the sandbox, as if each user had written first."""
        for chat_id in chat_ids:
            if chat_id > 0:
                self.sb.send_text(chat_id, "hi")
            else:
                self.sb.send_text(chat_id, "hi", user_id=1, chat_type="group")

    def delivered(self, chat_id: int) -> list[str]:
        bot_id = self.sb.bot_user["id"]
        return [m["text"] for m in self.sb.messages(chat_id) if m["from"]["id"] == bot_id]


@pytest.fixture
async def rig() -> AsyncIterator[Rig]:
    fake = FakeTime()
    sb = TelegramSandbox(token=TOKEN, clock=fake)
    await sb.start()
    session = AiohttpSession(api=TelegramAPIServer.from_base(sb.base_url))
    bot = Bot(TOKEN, session=session, default=DefaultBotProperties(parse_mode=ParseMode.HTML))
    sends = Sends(fake)
    bot.session.middleware(sends)
    try:
        yield Rig(sb, bot, fake, sends)
    finally:
        await bot.session.close()
        await sb.stop()


def events(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.getMessage() == name]


async def test_a_flood_to_many_chats_keeps_every_limit_and_loses_nothing(rig: Rig) -> None:
    chats = list(range(1, 51))
    rig.chats(*chats)
    rig.sb.set_rate_limit(global_per_second=30, per_chat_per_second=1)
    queue = rig.queue()
    began = rig.fake()

    outcomes = await asyncio.gather(
        *(queue.send(chat, f"reminder {n} for {chat}") for n in range(10) for chat in chats)
    )

    assert set(outcomes) == {DeliveryOutcome.SENT}
    for chat in chats:  # each chat got its ten, once each, in order
        assert rig.delivered(chat) == [f"reminder {n} for {chat}" for n in range(10)]
    assert [r.error for r in rig.sends.log] == [None] * 500  # not one 429
    assert rig.fake() - began >= 500 / 30 - 1  # the pacing, not luck, kept the limits
    await queue.close()


async def test_a_group_gets_at_most_twenty_messages_a_minute(rig: Rig) -> None:
    rig.chats(GROUP)
    queue = rig.queue()

    outcomes = await asyncio.gather(*(queue.send(GROUP, f"note {n}") for n in range(25)))

    assert set(outcomes) == {DeliveryOutcome.SENT}
    starts = [r.start for r in rig.sends.to(GROUP)]
    assert all(later - first >= 60 for first, later in zip(starts, starts[20:], strict=False))
    assert all(b - a >= 1 for a, b in itertools.pairwise(starts))
    assert rig.delivered(GROUP) == [f"note {n}" for n in range(25)]
    await queue.close()


async def test_a_429_is_honoured_and_the_message_goes_out_once(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.chats(7, 8)
    rig.sb.fail_next("sendMessage", error_code=429, retry_after=3)
    queue = rig.queue()

    first = queue.submit(7, "first")
    await asyncio.wait_for(rig.sends.logged.wait(), 10)  # the 429 came back
    other_chat = queue.submit(8, "other chat")

    assert await first is DeliveryOutcome.SENT
    assert await other_chat is DeliveryOutcome.SENT
    (refused, accepted) = rig.sends.to(7)
    assert (refused.error, accepted.error) == ("TelegramRetryAfter", None)
    assert accepted.start - refused.end >= 3  # waited retry_after before trying again
    (other,) = rig.sends.to(8)
    assert other.start - refused.end >= 3  # the whole bot held back, not only that chat
    assert rig.delivered(7) == ["first"]
    assert len(events(caplog, "delivery.retry_after")) == 1
    await queue.close()


async def test_a_blocked_chat_is_marked_inactive_and_never_tried_again(
    rig: Rig, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    rig.chats(7, 8)
    rig.sb.block_chat(7)
    async with SqliteTaskStore(tmp_path / "taskbot.db") as store:
        chats = SqliteReminderStore(store)
        queue = rig.queue(chats=chats)

        first = await asyncio.gather(
            *(queue.send(7, f"m{n}") for n in range(3)), queue.send(8, "ok")
        )
        later = await queue.send(7, "after the block")

        assert first == [DeliveryOutcome.FORBIDDEN] * 3 + [DeliveryOutcome.SENT]
        assert later is DeliveryOutcome.FORBIDDEN
        assert len(rig.sends.to(7)) == 1  # one 403, then no request at all
        assert await chats.inactive_chats() == {7}
        assert len(events(caplog, "delivery.forbidden")) == 1
        await queue.close()

        restarted = rig.queue()  # a new process knows the chat from the store
        await restarted.track_chats(chats)
        assert await restarted.send(7, "still blocked") is DeliveryOutcome.FORBIDDEN
        assert len(rig.sends.to(7)) == 1

        rig.sb.unblock_chat(7)
        await restarted.reactivate(7)  # the user wrote to the bot again
        assert await restarted.send(7, "welcome back") is DeliveryOutcome.SENT
        assert await chats.inactive_chats() == set()
        await restarted.close()


async def test_server_errors_are_retried_with_backoff(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    rig.chats(7)
    rig.sb.fail_next("sendMessage", error_code=502, times=2)
    queue = rig.queue()

    assert await queue.send(7, "eventually") is DeliveryOutcome.SENT

    starts = [r.start for r in rig.sends.to(7)]
    assert [round(b - a) for a, b in itertools.pairwise(starts)] == [1, 2]
    assert rig.delivered(7) == ["eventually"]
    assert events(caplog, "delivery.failed") == []
    await queue.close()


async def test_a_bad_request_fails_at_once_and_is_logged_once(
    rig: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    queue = rig.queue()  # chat 99 never wrote: "chat not found"

    assert await queue.send(99, "nobody") is DeliveryOutcome.FAILED

    assert len(rig.sends.to(99)) == 1
    (failure,) = events(caplog, "delivery.failed")
    assert failure.__dict__["error"] == "TelegramBadRequest"
    await queue.close()


async def test_closing_sends_what_fits_and_cancels_the_rest(rig: Rig) -> None:
    rig.chats(7)
    queue = rig.queue(limits=DeliveryLimits(per_chat_per_second=1))
    pending = [queue.submit(7, f"m{n}") for n in range(5)]
    await asyncio.sleep(0)

    await queue.close(grace=0)

    outcomes = [f.result() for f in pending]
    assert DeliveryOutcome.CANCELLED in outcomes
    assert set(outcomes) <= {DeliveryOutcome.SENT, DeliveryOutcome.CANCELLED}
    sent = [f"m{n}" for n, o in enumerate(outcomes) if o is DeliveryOutcome.SENT]
    assert rig.delivered(7) == sent
    assert await queue.send(7, "too late") is DeliveryOutcome.CANCELLED


async def test_the_notifier_keeps_its_methods_and_sends_through_the_queue(rig: Rig) -> None:
    rig.chats(GROUP, 5)
    queue = rig.queue()
    notifier = Notifier(rig.bot, admin_chat_id=GROUP, delivery=queue)
    now = utcnow()
    task = Task(1, "u", "Pay rent", "", 3, None, (), TaskStatus.FAILED, 5, 5, None, now, now)

    assert await notifier.send(5, "hello") is True
    await notifier.task_failed(task, "deltatask refused the task")
    notifier.health_changed("deltatask", ServerStatus.ONLINE, ServerStatus.ERROR, "timeout")
    await notifier.drain()

    assert rig.delivered(5)[0] == "hello"
    assert "Pay rent" in rig.delivered(5)[1]
    assert "deltatask" in rig.delivered(GROUP)[0]
    assert len(rig.sends.log) == 3
    await queue.close()
