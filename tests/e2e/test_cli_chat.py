"""`taskbot chat` as a person uses it: type to the bot in a terminal, press a button by number."""

from __future__ import annotations

import asyncio
import os
import sys
from pathlib import Path

import pytest

from tests.e2e.test_cli_run import ROOT, _config

pytestmark = pytest.mark.timeout(120)


class Terminal:
    """The chat process with its stdin and everything it printed so far."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.seen = ""

    async def type(self, line: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(f"{line}\n".encode())
        await self.process.stdin.drain()

    async def wait_for(self, text: str, timeout: float = 30) -> None:  # noqa: ASYNC109
        assert self.process.stdout is not None
        try:
            async with asyncio.timeout(timeout):
                while text not in self.seen:
                    chunk = await self.process.stdout.readline()
                    assert chunk, f"chat exited before showing {text!r}:\n{self.seen}"
                    self.seen += chunk.decode()
        except TimeoutError:
            raise AssertionError(f"no {text!r} within {timeout} s; shown:\n{self.seen}") from None


async def _chat(tmp_path: Path) -> Terminal:
    env = {**os.environ, "TASKBOT_CONFIG": str(_config(tmp_path))}
    env.pop("BOT_TOKEN", None)  # the chat needs none: it talks to its own sandbox
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "chat",
        "--data-dir",
        str(tmp_path / "chat"),
        cwd=ROOT,
        env=env,
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    return Terminal(process)


async def test_a_terminal_user_adds_a_task_and_completes_it_by_button_number(
    tmp_path: Path,
) -> None:
    term = await _chat(tmp_path)
    await term.wait_for("/quit leaves.")

    await term.type("/new Buy milk tomorrow 18:00")
    await term.wait_for("[5 🗑 Delete]")
    await term.type("[9]")
    await term.wait_for("(no button 9; the last keyboard has 5)")
    await term.type("[1]")  # ✅ Done
    await term.wait_for("(edited) ✔️ Done: #1 Buy milk")
    await term.type("/quit")
    code = await asyncio.wait_for(term.process.wait(), 60)

    assert code == 0
    assert "bot │ ✅ Saved task #1: Buy milk" in term.seen
    assert "[1 ✅ Done]" in term.seen


async def test_a_bare_number_is_an_answer_to_the_bot_not_a_button_press(tmp_path: Path) -> None:
    term = await _chat(tmp_path)
    await term.wait_for("/quit leaves.")

    await term.type("/new")
    await term.wait_for("[1 ✖️ Cancel]")
    await term.type("2024")  # a title that is a number
    await term.wait_for("When is it due?")
    await term.type("/quit")

    assert await asyncio.wait_for(term.process.wait(), 60) == 0
    assert "Cancelled" not in term.seen


async def test_text_that_looks_like_html_is_shown_as_typed(tmp_path: Path) -> None:
    term = await _chat(tmp_path)
    await term.wait_for("/quit leaves.")

    await term.type("/new <b>bold</b> & <i>soap</i>")
    await term.wait_for("Saved task #1")
    await term.type("/quit")

    assert await asyncio.wait_for(term.process.wait(), 60) == 0
    assert "Saved task #1: <b>bold</b> & <i>soap</i>" in term.seen


async def test_lines_piped_in_at_once_are_all_answered_in_order_before_it_exits(
    tmp_path: Path,
) -> None:
    term = await _chat(tmp_path)
    await term.type("/new Pay rent tomorrow 18:00")
    await term.type("/list")
    assert term.process.stdin is not None
    term.process.stdin.close()  # end of input: leave once the bot has answered
    out, _ = await asyncio.wait_for(term.process.communicate(), 60)
    shown = term.seen + out.decode()

    assert term.process.returncode == 0
    saved = shown.index("Saved task #1: Pay rent")
    listed = shown.index("Open tasks (1)")
    assert saved < listed
