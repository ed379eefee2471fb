"""`taskbot chat`: talk to the bot from a terminal, through the local Telegram sandbox.

The same sandbox, bot and MCP servers as `taskbot demo`, but you type: each line goes to the
bot as a Telegram message from you, its replies print as they arrive (reminders too, when
they fall due), and `[2]` presses button 2 of the last keyboard shown (a bare number is a
message: the bot asks for numbers, a priority say). Tasks stay in the data directory
between sessions. `/quit` or end of input leaves.
"""

from __future__ import annotations

import asyncio
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from bot.demo import USER_ID, local_bot
from bot.sandbox import TelegramSandbox
from core.logging import setup_logging
from core.settings import AppConfig

QUIT = "/quit"
_PRESS = re.compile(r"\[(\d+)\]")
SETTLE_QUIET_S = 1.5  # at the end, the bot counts as done after this long without output
SETTLE_MAX_S = 15.0  # bounds that wait when something keeps talking

Json = dict[str, Any]


class _Screen:
    """Prints what the bot does in the user's chat, and remembers the last keyboard."""

    def __init__(self, sb: TelegramSandbox, out: TextIO) -> None:
        self.sb = sb
        self.out = out
        self.buttons: list[tuple[Json, str]] = []
        self._seen_messages = 0
        self._seen_edits = 0
        self._seen_answers = 0

    def _unseen(self) -> bool:
        return (
            len(self.sb.messages(USER_ID)) > self._seen_messages
            or len(self.sb.edits) > self._seen_edits
            or len(self.sb.callback_answers) > self._seen_answers
        )

    async def follow(self) -> None:
        """Print new bot messages and edits until cancelled."""
        while True:
            try:
                await self.sb.wait_until(self._unseen, 3600, "bot activity")
            except TimeoutError:
                continue
            self.flush()

    async def settle(self) -> None:
        """Let answers still on their way arrive: until the bot is quiet for a moment."""
        deadline = asyncio.get_running_loop().time() + SETTLE_MAX_S
        while asyncio.get_running_loop().time() < deadline:
            try:
                await self.sb.wait_until(self._unseen, SETTLE_QUIET_S, "bot activity")
            except TimeoutError:
                return
            self.flush()

    def flush(self) -> None:
        messages = self.sb.messages(USER_ID)
        for message in messages[self._seen_messages :]:
            if message["from"]["id"] == self.sb.bot_user["id"]:
                self._print(message, edited=False)
        self._seen_messages = len(messages)
        edits = self.sb.edits[self._seen_edits :]
        self._seen_edits = len(self.sb.edits)
        for edit in edits:  # each is the message as that edit left it
            if edit["chat"]["id"] == USER_ID:
                self._print(edit, edited=True)
        answers = self.sb.callback_answers[self._seen_answers :]
        self._seen_answers = len(self.sb.callback_answers)
        for answer in answers:  # the pop-up a press gets (Telegram shows it briefly)
            if answer.get("text"):
                self.out.write(f"  bot ⓘ {answer['text']}\n")
        self.out.flush()

    def _print(self, message: Json, *, edited: bool) -> None:
        prefix = "(edited) " if edited else ""
        body = message.get("text") or message.get("caption") or ""
        if "document" in message:
            body = f"[file {message['document'].get('file_name', '')}] {body}"
        lines = (prefix + body).splitlines() or [""]  # the sandbox keeps text, not HTML
        self.out.write(f"  bot │ {lines[0]}\n")
        for line in lines[1:]:
            self.out.write(f"      │ {line}\n")
        rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
        if rows:
            self.buttons = []
            for row in rows:
                labels = []
                for button in row:
                    if "callback_data" in button:
                        self.buttons.append((message, button["callback_data"]))
                        labels.append(f"[{len(self.buttons)} {button['text']}]")
                self.out.write("      │ " + "  ".join(labels) + "\n")
        self.out.flush()


async def run_chat(
    config: AppConfig,
    data_dir: Path,
    *,
    enable_all: bool = False,
    lang: str = "en",
    read_line: Callable[[], Any] | None = None,
    out: TextIO = sys.stdout,
) -> int:
    """Serve the bot on a fresh sandbox and relay the terminal to it until /quit."""
    setup_logging(data_dir / "logs", console=False)
    if enable_all:
        config = config.with_servers(**{n: {"enabled": True} for n in config.servers})
    reader = read_line or await _stdin_lines()
    async with local_bot(config, data_dir) as (sb, runtime):
        assert runtime.orch is not None
        out.write(
            f"taskbot chat · {len(runtime.orch.integrations)} MCP servers · data in {data_dir}\n"
            f"Type to the bot (try /help). [1] presses button 1 of the last keyboard. "
            f"{QUIT} leaves.\n"
        )
        out.flush()
        screen = _Screen(sb, out)
        following = asyncio.create_task(screen.follow())
        try:
            await _relay(sb, screen, reader, lang, out)
            await screen.settle()
        finally:
            following.cancel()
    return 0


async def _relay(
    sb: TelegramSandbox, screen: _Screen, read_line: Callable[[], Any], lang: str, out: TextIO
) -> None:
    while True:
        raw = await read_line()
        line = (raw.decode() if isinstance(raw, bytes) else raw or "").strip()
        if not raw or line == QUIT:
            return
        if not line:
            continue
        press = _PRESS.fullmatch(line)
        if press:
            number = int(press.group(1))
            if not screen.buttons:
                out.write("  (no keyboard shown yet)\n")
                out.flush()
                continue
            if not 1 <= number <= len(screen.buttons):
                out.write(f"  (no button {number}; the last keyboard has {len(screen.buttons)})\n")
                out.flush()
                continue
            message, data = screen.buttons[number - 1]
            try:
                sb.press(message, data, user_id=USER_ID)
            except (LookupError, ValueError):
                out.write("  (that button is gone: the message changed since)\n")
                out.flush()
            continue
        sb.send_text(USER_ID, line, user_id=USER_ID, first_name="You", language_code=lang)


async def _stdin_lines() -> Callable[[], Any]:
    """An awaitable readline on stdin that never blocks the loop (nor its shutdown)."""
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader.readline
