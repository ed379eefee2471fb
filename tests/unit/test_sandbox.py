"""The Telegram sandbox, driven by a real aiogram Bot and Dispatcher over loopback HTTP."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.filters import CommandStart
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from aiohttp import web

from bot.sandbox import TelegramSandbox

pytestmark = pytest.mark.timeout(15)

TOKEN = "123:ABC"
CHAT = 501


def _keyboard(*data: str) -> InlineKeyboardMarkup:
    buttons = [InlineKeyboardButton(text=d, callback_data=d) for d in data]
    return InlineKeyboardMarkup(inline_keyboard=[buttons])


def _echo_router() -> Router:
    router = Router()

    @router.message(CommandStart())
    async def greet(message: Message) -> None:
        name = message.from_user.first_name if message.from_user else "stranger"
        await message.answer(f"Hello, {name}!", reply_markup=_keyboard("hi", "bye"))

    @router.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(message.text or "")

    @router.callback_query()
    async def pressed(query: CallbackQuery) -> None:
        await query.answer(f"pressed {query.data}")
        if isinstance(query.message, Message):
            await query.message.edit_text(f"You pressed {query.data}")

    return router


def _api(sandbox: TelegramSandbox) -> TelegramAPIServer:
    return TelegramAPIServer.from_base(sandbox.base_url)


@pytest.fixture
async def sandbox() -> AsyncIterator[TelegramSandbox]:
    async with TelegramSandbox(token=TOKEN) as sb:
        yield sb


@pytest.fixture
async def bot(sandbox: TelegramSandbox) -> AsyncIterator[Bot]:
    bot = Bot(TOKEN, session=AiohttpSession(api=_api(sandbox)))
    yield bot
    await bot.session.close()


@pytest.fixture
async def polling(bot: Bot) -> AsyncIterator[Dispatcher]:
    dispatcher = Dispatcher()
    dispatcher.include_router(_echo_router())
    started = asyncio.Event()
    dispatcher.startup.register(started.set)
    task = asyncio.create_task(
        dispatcher.start_polling(bot, handle_signals=False, close_bot_session=False)
    )
    await asyncio.wait_for(started.wait(), timeout=5)
    yield dispatcher
    await dispatcher.stop_polling()
    await asyncio.wait_for(task, timeout=5)


async def test_start_command_is_answered_with_a_greeting_and_buttons(
    sandbox: TelegramSandbox, polling: Dispatcher
) -> None:
    sandbox.send_text(CHAT, "/start", first_name="Ann")

    [reply] = await sandbox.wait_for_messages(CHAT, timeout=5)

    assert reply["text"] == "Hello, Ann!"
    assert reply["from"]["username"] == "taskbot_sandbox_bot"
    buttons = reply["reply_markup"]["inline_keyboard"][0]
    assert [b["callback_data"] for b in buttons] == ["hi", "bye"]


async def test_plain_text_is_echoed_back_in_order(
    sandbox: TelegramSandbox, polling: Dispatcher
) -> None:
    sandbox.send_text(CHAT, "one")
    sandbox.send_text(CHAT, "two")

    replies = await sandbox.wait_for_messages(CHAT, count=2, timeout=5)

    assert [m["text"] for m in replies] == ["one", "two"]
    assert [m["text"] for m in sandbox.messages(CHAT)] == ["one", "two", "one", "two"]


async def test_a_waiting_long_poll_returns_as_soon_as_an_update_arrives(
    sandbox: TelegramSandbox, bot: Bot
) -> None:
    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await sandbox.wait_until(lambda: any(m == "getUpdates" for m, _ in sandbox.calls), 2)

    sent_at = time.monotonic()
    sandbox.send_text(CHAT, "wake up")
    updates = await asyncio.wait_for(poll, timeout=2)

    assert time.monotonic() - sent_at < 1.0
    assert [u.message.text for u in updates if u.message] == ["wake up"]


async def test_text_over_4096_characters_is_rejected_as_too_long(
    sandbox: TelegramSandbox, bot: Bot
) -> None:
    sandbox.send_text(CHAT, "hi")

    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(CHAT, "a" * 4097)
    longest = await bot.send_message(CHAT, "a" * 4096)

    assert len(longest.text or "") == 4096


async def test_empty_text_is_rejected(sandbox: TelegramSandbox, bot: Bot) -> None:
    sandbox.send_text(CHAT, "hi")

    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(CHAT, "   ")


@pytest.mark.parametrize(
    "html",
    ["<b>never closed", "<blink>x</blink>", "Tom & Jerry", "1 < 2", "<b><i>x</b></i>", "&nbsp;"],
)
async def test_malformed_html_is_rejected_as_unparseable(
    sandbox: TelegramSandbox, bot: Bot, html: str
) -> None:
    sandbox.send_text(CHAT, "hi")

    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(CHAT, html, parse_mode="HTML")


async def test_valid_html_reaches_the_user_as_plain_text_with_entities(
    sandbox: TelegramSandbox, bot: Bot
) -> None:
    sandbox.send_text(CHAT, "hi")

    sent = await bot.send_message(
        CHAT,
        '<b>Due</b> 1 &lt; 2 &amp; <a href="http://x.test/?a=1&amp;b=2">link</a>',
        parse_mode="HTML",
    )

    assert sent.text == "Due 1 < 2 & link"
    assert [(e.type, e.offset, e.length) for e in sent.entities or []] == [
        ("bold", 0, 3),
        ("text_link", 12, 4),
    ]
    assert sent.entities and sent.entities[1].url == "http://x.test/?a=1&b=2"


async def test_callback_data_over_64_bytes_is_rejected(sandbox: TelegramSandbox, bot: Bot) -> None:
    sandbox.send_text(CHAT, "hi")

    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(CHAT, "pick", reply_markup=_keyboard("x" * 65))


async def test_injected_429_raises_retry_after_once_then_sends(
    sandbox: TelegramSandbox, bot: Bot
) -> None:
    sandbox.send_text(CHAT, "hi")
    sandbox.fail_next("sendMessage", error_code=429, retry_after=7)

    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(CHAT, "first try")
    await bot.send_message(CHAT, "second try")

    assert caught.value.retry_after == 7
    assert [m["text"] for m in sandbox.messages(CHAT)] == ["hi", "second try"]


async def test_sends_to_a_chat_that_blocked_the_bot_are_forbidden(
    sandbox: TelegramSandbox, bot: Bot
) -> None:
    sandbox.send_text(CHAT, "hi")
    sandbox.block_chat(CHAT)

    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(CHAT, "reminder")


async def test_second_send_to_one_chat_within_a_second_is_rate_limited() -> None:
    now = [100.0]
    async with TelegramSandbox(token=TOKEN, clock=lambda: now[0]) as sandbox:
        bot = Bot(TOKEN, session=AiohttpSession(api=_api(sandbox)))
        sandbox.send_text(CHAT, "hi")
        sandbox.set_rate_limit(global_per_second=30, per_chat_per_second=1)

        await bot.send_message(CHAT, "first")
        with pytest.raises(TelegramRetryAfter) as caught:
            await bot.send_message(CHAT, "too soon")
        now[0] += 1.0
        await bot.send_message(CHAT, "a second later")
        await bot.session.close()

    assert caught.value.retry_after == 1


async def test_pressing_a_button_delivers_a_callback_query_and_records_the_answer(
    sandbox: TelegramSandbox, polling: Dispatcher
) -> None:
    sandbox.send_text(CHAT, "/start")
    [greeting] = await sandbox.wait_for_messages(CHAT, timeout=5)

    sandbox.press(greeting, "bye")
    await sandbox.wait_until(lambda: greeting["text"] == "You pressed bye", 5, "the edit")

    assert [a["text"] for a in sandbox.callback_answers] == ["pressed bye"]
    assert "reply_markup" not in greeting
    assert [e["text"] for e in sandbox.edits] == ["You pressed bye"]


async def test_pressing_a_button_the_message_does_not_show_is_a_test_error(
    sandbox: TelegramSandbox, bot: Bot
) -> None:
    user_message = sandbox.send_text(CHAT, "hi")

    with pytest.raises(ValueError, match="no button"):
        sandbox.press(user_message, "hi")


async def test_editing_to_identical_text_and_markup_is_not_modified(
    sandbox: TelegramSandbox, bot: Bot
) -> None:
    sandbox.send_text(CHAT, "hi")
    sent = await bot.send_message(CHAT, "Task list", reply_markup=_keyboard("done"))

    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            "Task list", chat_id=CHAT, message_id=sent.message_id, reply_markup=_keyboard("done")
        )
    await bot.edit_message_text("Task list", chat_id=CHAT, message_id=sent.message_id)

    assert "reply_markup" not in sandbox.messages(CHAT)[-1]


async def test_a_sent_document_can_be_downloaded_byte_for_byte(
    sandbox: TelegramSandbox, bot: Bot
) -> None:
    data = b"title,due\nfile taxes,2025-04-15\n"
    sandbox.send_text(CHAT, "/export")

    sent = await bot.send_document(CHAT, BufferedInputFile(data, "tasks.csv"), caption="Export")
    assert sent.document is not None
    file = await bot.get_file(sent.document.file_id)
    assert file.file_path is not None
    downloaded = await bot.download_file(file.file_path)

    assert sent.document.file_name == "tasks.csv"
    assert sent.caption == "Export"
    assert sandbox.file_bytes(sent.document.file_id) == data
    assert downloaded is not None
    assert downloaded.read() == data


async def test_a_users_document_arrives_as_an_update_the_bot_can_download(
    sandbox: TelegramSandbox, bot: Bot
) -> None:
    sandbox.send_document(CHAT, "notes.txt", b"buy milk", caption="my list")

    [update] = await bot.get_updates()
    assert update.message is not None and update.message.document is not None
    downloaded = await bot.download(update.message.document.file_id)

    assert (update.message.document.file_name, update.message.caption) == ("notes.txt", "my list")
    assert downloaded is not None
    assert downloaded.read() == b"buy milk"


async def test_waiting_for_a_reply_from_a_silent_bot_times_out_with_a_reason(
    sandbox: TelegramSandbox,
) -> None:
    sandbox.send_text(CHAT, "anyone?")

    with pytest.raises(TimeoutError, match=f"1 new bot message\\(s\\) in chat {CHAT}"):
        await sandbox.wait_for_messages(CHAT, timeout=0.05)


async def test_get_updates_offset_confirms_and_drops_older_updates(
    sandbox: TelegramSandbox, bot: Bot
) -> None:
    for text in ("a", "b", "c"):
        sandbox.send_text(CHAT, text)

    everything = await bot.get_updates()
    after_first = await bot.get_updates(offset=everything[1].update_id)
    unconfirmed = await bot.get_updates()
    limited = await bot.get_updates(limit=1)

    assert len(everything) == 3
    assert [u.update_id for u in after_first] == [u.update_id for u in everything[1:]]
    assert [u.update_id for u in unconfirmed] == [u.update_id for u in everything[1:]]
    assert [u.update_id for u in limited] == [everything[1].update_id]


async def test_a_newer_poll_ends_the_waiting_one_with_a_conflict(
    sandbox: TelegramSandbox, bot: Bot
) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=10))
    await sandbox.wait_until(lambda: len(sandbox.calls) == 1, 2)

    await bot.get_updates(timeout=0)

    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates"):
        await asyncio.wait_for(first, timeout=2)


async def test_a_wrong_token_is_unauthorized(sandbox: TelegramSandbox) -> None:
    stranger = Bot("999:WRONG", session=AiohttpSession(api=_api(sandbox)))

    with pytest.raises(TelegramUnauthorizedError):
        await stranger.get_me()
    await stranger.session.close()


async def test_unknown_methods_are_not_found_and_json_bodies_work(
    sandbox: TelegramSandbox,
) -> None:
    sandbox.send_text(CHAT, "hi")
    base = f"{sandbox.base_url}/bot{TOKEN}"

    async with aiohttp.ClientSession() as http:
        async with http.post(f"{base}/sendTelepathy", json={}) as response:
            missing = (response.status, await response.json())
        async with http.post(f"{base}/SENDMESSAGE", json={"chat_id": CHAT, "text": "x"}) as r:
            sent = await r.json()

    assert missing == (404, {"ok": False, "error_code": 404, "description": "Not Found"})
    assert sent["ok"] is True
    assert sent["result"]["text"] == "x"


async def test_group_admins_are_reported_as_administrators(sandbox: TelegramSandbox) -> None:
    sandbox.group_admins.add(7)
    sandbox.send_text(-100, "/start", user_id=7, chat_type="supergroup")
    bot = Bot(TOKEN, session=AiohttpSession(api=_api(sandbox)))

    admin = await bot.get_chat_member(-100, 7)
    member = await bot.get_chat_member(-100, 8)
    await bot.session.close()

    assert (admin.status, member.status) == ("administrator", "member")


async def test_webhook_receives_updates_with_the_secret_and_runs_its_inline_reply(
    sandbox: TelegramSandbox, bot: Bot
) -> None:
    received: list[tuple[str | None, dict[str, object]]] = []

    async def hook(request: web.Request) -> web.Response:
        update = await request.json()
        received.append((request.headers.get("X-Telegram-Bot-Api-Secret-Token"), update))
        chat_id = update["message"]["chat"]["id"]
        return web.json_response({"method": "sendMessage", "chat_id": chat_id, "text": "pong"})

    app = web.Application()
    app.router.add_post("/hook", hook)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    port = runner.addresses[0][1]
    try:
        await bot.set_webhook(f"http://127.0.0.1:{port}/hook", secret_token="s3cret")
        sandbox.send_text(CHAT, "ping")
        [reply] = await sandbox.wait_for_messages(CHAT, timeout=5)
    finally:
        await runner.cleanup()

    assert reply["text"] == "pong"
    assert [secret for secret, _ in received] == ["s3cret"]
    with pytest.raises(TelegramConflictError, match="webhook is active"):
        await bot.get_updates()


async def test_a_restarted_sandbox_answers_on_the_same_port_with_its_history(
    sandbox: TelegramSandbox, bot: Bot
) -> None:
    sandbox.send_text(CHAT, "before the outage")
    base_url = sandbox.base_url

    await sandbox.stop()
    await sandbox.start()
    [update] = await bot.get_updates()

    assert sandbox.base_url == base_url
    assert update.message is not None
    assert update.message.text == "before the outage"
