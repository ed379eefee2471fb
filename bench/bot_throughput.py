"""Updates per second through the whole bot, against a bare aiogram echo bot, same sandbox.

Both bots poll one in-process Telegram sandbox over HTTP on 127.0.0.1. A phase queues all
its updates at once (users in many chats, each under the rate limit) and ends when the last
answer has arrived, so the figure is updates over wall time with aiogram's own concurrency.
- `/list`: our bot runs the middlewares, reads one page of the chat's 20 open tasks from the
  store, renders it and sends it with buttons; the echo bot sends the text back.
- Done button: our bot checks the task and the user's right to change it, completes it
  (one store transaction; the reminder listener runs), edits the card and answers the
  press; the echo bot edits the message and answers the press (the same two API calls).
MCP servers are off here: their cost is `creation`'s subject; this one measures the edge.
The sandbox shares the event loop with the bot under test; both bots pay that equally.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiogram import Dispatcher, F
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bench.report import Report
from bench.rig import SqlCounter, only, running_bot, scratch, shipped_config
from bot.app import create_bot
from bot.keyboards import TaskAction, Verb
from bot.runtime import Runtime
from bot.sandbox import TelegramSandbox
from core.models import TaskDraft, new_uid
from core.store import SqliteTaskStore

NAME = "bot_throughput"
ROUNDS = 3  # repeats of every measurement in a full run; --quick makes it 1
TOKEN = "4242:bench-sandbox-token"
UPDATES = 1000  # per phase and bot
CHATS = 100  # chats per round: each sees UPDATES / CHATS of each kind, well under 100/min
TASKS_PER_CHAT = 20  # two pages of /list
WAIT_S = 120.0  # bounds one phase
WARMUP = 40  # updates of each kind before timing, so imports and caches are warm

Json = dict[str, Any]


@dataclass
class Phase:
    updates: int
    seconds: float
    statements: int | None = None  # SQL statements our bot sent to the store meanwhile

    @property
    def rate(self) -> float:
        return self.updates / self.seconds


class _Driver:
    """Plays the users: queues updates in the sandbox and waits for every answer."""

    def __init__(self, sb: TelegramSandbox) -> None:
        self.sb = sb

    async def messages(self, sends: Sequence[tuple[int, str]]) -> float:
        """Queue `(chat, text)` sends at once; seconds until each chat had all its replies."""
        per_chat: dict[int, int] = {}
        began = time.perf_counter()
        for chat, text in sends:
            self.sb.send_text(chat, text)
            per_chat[chat] = per_chat.get(chat, 0) + 1
        for chat, count in per_chat.items():
            await self.sb.wait_for_messages(chat, count=count, timeout=WAIT_S)
        return time.perf_counter() - began

    async def cards(self, sends: Sequence[tuple[int, str]]) -> list[Json]:
        """Send commands that each answer with one message carrying buttons; those messages."""
        per_chat: dict[int, int] = {}
        for chat, text in sends:
            self.sb.send_text(chat, text)
            per_chat[chat] = per_chat.get(chat, 0) + 1
        out: list[Json] = []
        for chat, count in per_chat.items():
            out += await self.sb.wait_for_messages(chat, count=count, timeout=WAIT_S)
        return out

    async def presses(self, cards: Sequence[Json]) -> float:
        """Press Done on every card at once; seconds until every press was answered."""
        target = len(self.sb.callback_answers) + len(cards)
        began = time.perf_counter()
        for card in cards:
            buttons = card["reply_markup"]["inline_keyboard"]
            done = next(
                b["callback_data"]
                for row in buttons
                for b in row
                if ":done:" in b.get("callback_data", "")
            )
            self.sb.press(card, done)
        await self.sb.wait_until(
            lambda: len(self.sb.callback_answers) >= target, WAIT_S, "every press answered"
        )
        return time.perf_counter() - began


def _echo_dispatcher() -> Dispatcher:
    """The floor: one echo handler; a press edits the message and answers, as ours does."""
    dp = Dispatcher()

    @dp.message(F.text.startswith("/card"))
    async def card(message: Message) -> None:
        number = int((message.text or "0").split()[-1])
        data = TaskAction(action=Verb.DONE, task_id=number).pack()
        markup = InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="Done", callback_data=data)]]
        )
        await message.answer(f"card {number}", reply_markup=markup)

    @dp.message()
    async def echo(message: Message) -> None:
        await message.answer(message.text or "")

    @dp.callback_query()
    async def pressed(query: CallbackQuery) -> None:
        if isinstance(query.message, Message):
            await query.message.edit_text(f"done: {query.data}")
        await query.answer("done")

    return dp


@contextlib.asynccontextmanager
async def _echo_bot(sb: TelegramSandbox) -> AsyncIterator[None]:
    bot = create_bot(TOKEN, sb.base_url)
    dp = _echo_dispatcher()
    await bot.delete_webhook(drop_pending_updates=True)
    polling = asyncio.create_task(
        dp.start_polling(bot, handle_signals=False, close_bot_session=False)
    )
    try:
        yield
    finally:
        await dp.stop_polling()
        await polling
        await bot.session.close()


@contextlib.asynccontextmanager
async def _our_bot(sb: TelegramSandbox, data: Path) -> AsyncIterator[Runtime]:
    cleaner = create_bot(TOKEN, sb.base_url)
    await cleaner.delete_webhook(drop_pending_updates=True)
    await cleaner.session.close()
    async with running_bot(only(shipped_config(), []), sb.base_url, TOKEN, data) as runtime:
        yield runtime


async def _seed(data: Path, chats: Sequence[int]) -> dict[int, list[int]]:
    """Open tasks in each chat, written through the store's own API; task ids by chat."""
    ids: dict[int, list[int]] = {}
    store = SqliteTaskStore(data / "taskbot.db")
    async with store:
        for chat in chats:
            for k in range(TASKS_PER_CHAT):
                draft = TaskDraft(
                    title=f"Call the supplier about order {k}",
                    priority=1 + k % 5,
                    tags=("work",),
                    chat_id=chat,
                    author_id=chat,
                )
                task = await store.create_task(draft, uid=new_uid(), servers=())
                ids.setdefault(chat, []).append(task.id)
    return ids


def _chats(base: int, count: int) -> list[int]:
    return [base + i for i in range(count)]


async def _measure(
    driver: _Driver,
    chats: Sequence[int],
    n: int,
    card_command: Any,
    sql: SqlCounter | None = None,
) -> tuple[Phase, Phase]:
    """One /list phase and one Done phase on `chats`; `card_command(chat, k)` makes a card."""
    sends = [(chats[i % len(chats)], "/list") for i in range(n)]
    before = sql.count if sql else 0
    listing = Phase(n, await driver.messages(sends))
    listing.statements = sql.count - before if sql else None
    per_chat = max(1, n // len(chats))
    cards = await driver.cards(
        [(c, card_command(c, k)) for c in chats for k in range(per_chat)][:n]
    )
    before = sql.count if sql else 0
    pressing = Phase(len(cards), await driver.presses(cards))
    pressing.statements = sql.count - before if sql else None
    return listing, pressing


async def _round(
    sb: TelegramSandbox,
    data: Path,
    ids: dict[int, list[int]],
    bases: tuple[int, int],
    n: int,
    chats: int,
    ours_first: bool,
) -> dict[str, tuple[Phase, Phase]]:
    driver = _Driver(sb)
    results: dict[str, tuple[Phase, Phase]] = {}

    async def ours() -> None:
        async with _our_bot(sb, data) as runtime:
            assert runtime.orch is not None
            sql = SqlCounter()
            sql.attach(runtime.orch)

            def card(c: int, k: int) -> str:
                return f"/task {ids[c][k]}"

            await _measure(driver, _chats(bases[0] - 10_000, 4), WARMUP, card)
            results["ours"] = await _measure(driver, _chats(bases[0], chats), n, card, sql)

    async def echo() -> None:
        async with _echo_bot(sb):
            await _measure(driver, _chats(bases[1] - 10_000, 4), WARMUP, lambda c, k: f"/card {k}")
            results["echo"] = await _measure(
                driver, _chats(bases[1], chats), n, lambda c, k: f"/card {k}"
            )

    for step in (ours, echo) if ours_first else (echo, ours):
        await step()
    return results


async def run(quick: bool, rounds: int) -> Report:
    report = Report(NAME)
    n = 200 if quick else UPDATES
    chats = 20 if quick else CHATS
    report.info["updates per phase"] = n
    report.info["chats per phase"] = chats
    report.info["servers"] = "none (edge only; see creation for the fan-out)"
    with scratch(NAME) as data:
        bases = [(100_000 * (r + 1), 100_000 * (r + 1) + 50_000) for r in range(rounds)]
        seeded = [b[0] + i for b in bases for i in range(chats)]
        seeded += [b[0] - 10_000 + i for b in bases for i in range(4)]
        ids = await _seed(data, seeded)
        async with TelegramSandbox(token=TOKEN, record_calls=False) as sb:
            for r in range(rounds):
                got = await _round(sb, data, ids, bases[r], n, chats, ours_first=r % 2 == 0)
                ours_list, ours_done = got["ours"]
                echo_list, echo_done = got["echo"]
                _figures(report, got)
                report.details.setdefault("rounds", []).append(
                    {
                        "ours_first": r % 2 == 0,
                        "ours": {"list_s": ours_list.seconds, "done_s": ours_done.seconds},
                        "echo": {"list_s": echo_list.seconds, "done_s": echo_done.seconds},
                    }
                )
    return report


def _figures(report: Report, got: dict[str, tuple[Phase, Phase]]) -> None:
    (ours_list, ours_done), (echo_list, echo_done) = got["ours"], got["echo"]
    for label, ours, echo in (
        ("/list", ours_list, echo_list),
        ("Done press", ours_done, echo_done),
    ):
        report.figure(f"{label} updates/s", "upd/s", better="higher", baseline_name="echo bot").add(
            ours.rate, echo.rate
        )
        report.figure(f"{label} cost per update", "ms", baseline_name="echo bot").add(
            1000 / ours.rate, 1000 / echo.rate
        )
        if ours.statements is not None:
            report.figure(f"{label} SQL statements per update", "stmts").add(
                ours.statements / ours.updates
            )
