"""`taskbot demo`: the local Telegram sandbox, the bot and the MCP servers, one conversation.

It plays what a user would do, prints every exchange, shows where the new task landed on
each enabled server, prints the health table and exits 0, or 1 when something a user
would notice went wrong (no reply, a task missing on a server).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from bot.cli import elapsed_ms, render_table, reset_demo_dir
from bot.handlers.admin import health_table
from bot.runtime import Runtime
from bot.sandbox import TelegramSandbox
from core.integration import Inspectable
from core.logging import setup_logging
from core.models import OutboxState
from core.settings import AppConfig, RuntimeEnv

DEMO_TOKEN = "123456:sandbox-demo-token"  # only ever sent to the local sandbox
USER_ID = 1001
ADMIN_GROUP = -1_000_500
REPLY_WAIT_S = 15.0

Json = dict[str, Any]


def _show(who: str, body: str) -> None:
    lines = body.splitlines() or [""]  # the sandbox keeps a message's text, not its HTML
    print(f"  {who:>5} │ {lines[0]}")
    for line in lines[1:]:
        print(f"        │ {line}")


class _Conversation:
    def __init__(self, sb: TelegramSandbox) -> None:
        self.sb = sb

    async def say(self, body: str, *, lang: str = "en", replies: int = 1) -> list[Json]:
        _show("user", body)
        self.sb.send_text(USER_ID, body, user_id=USER_ID, first_name="Alice", language_code=lang)
        got = await self.sb.wait_for_messages(USER_ID, count=replies, timeout=REPLY_WAIT_S)
        for message in got:
            _show("bot", message.get("text", ""))
            for row in (message.get("reply_markup") or {}).get("inline_keyboard", []):
                print("        │ " + "  ".join(f"[{b['text']}]" for b in row))
        return got

    async def press(self, message: Json, label: str) -> None:
        buttons = [b for row in message["reply_markup"]["inline_keyboard"] for b in row]
        button = next(b for b in buttons if label in b["text"])
        _show("user", f"(presses [{button['text']}])")
        edits = len(self.sb.edits)
        self.sb.press(message, button["callback_data"], user_id=USER_ID)
        await self.sb.wait_until(lambda: len(self.sb.edits) > edits, REPLY_WAIT_S, "an edit")
        edited = self.sb.messages(USER_ID)[message["message_id"] - 1]
        _show("bot", f"(edits the card) {edited.get('text', '')}")


@contextlib.asynccontextmanager
async def local_bot(
    config: AppConfig, data_dir: Path, *, metrics_port: int | None = None
) -> AsyncIterator[tuple[TelegramSandbox, Runtime]]:
    """A fresh sandbox and the bot serving it (demo and chat), started; stopped on exit."""
    async with TelegramSandbox(token=DEMO_TOKEN) as sb:
        env = RuntimeEnv(
            bot_token=DEMO_TOKEN,
            telegram_api_base=sb.base_url,
            data_dir=data_dir,
            admin_chat_id=ADMIN_GROUP,
            admin_ids=frozenset({USER_ID}),
        )
        runtime = Runtime(config=config, env=env, metrics_port=metrics_port)
        serving = asyncio.create_task(runtime.serve())
        ready = asyncio.create_task(runtime.ready.wait())
        await asyncio.wait({serving, ready}, return_when=asyncio.FIRST_COMPLETED)
        if serving.done():
            serving.result()  # start-up failed: raise what it raised
        try:
            yield sb, runtime
        finally:
            runtime.stop.set()
            await serving


async def run_demo(config: AppConfig, data_dir: Path, *, enable_all: bool = False) -> int:
    reset_demo_dir(data_dir)
    setup_logging(data_dir / "logs", console=False)
    if enable_all:
        config = config.with_servers(**{n: {"enabled": True} for n in config.servers})
    print(f"taskbot demo · local Telegram sandbox · data in {data_dir}")
    began = time.perf_counter()
    async with local_bot(config, data_dir, metrics_port=0) as (sb, runtime):
        assert runtime.orch is not None
        print(f"started {len(runtime.orch.integrations)} MCP servers in {elapsed_ms(began):.0f} ms")
        print()
        ok = await _play(_Conversation(sb), runtime)
    print("demo finished:", "OK" if ok else "PROBLEMS (see above)")
    return 0 if ok else 1


async def _play(talk: _Conversation, runtime: Runtime) -> bool:
    orch = runtime.orch
    assert orch is not None
    await talk.say("/start")
    sent = time.perf_counter()
    card = (await talk.say("/new Pay rent tomorrow 18:00 #home !1"))[0]
    reply_ms = elapsed_ms(sent)
    task = (await orch.list_tasks(USER_ID))[-1]
    states = await orch.wait_synced(task.uid, within=30)
    fanout_ms = elapsed_ms(sent)
    print()
    print(f"task #{task.id} (uid {task.uid[:8]}): reply in {reply_ms:.0f} ms round trip,")
    print(f"every enabled server reached in {fanout_ms:.0f} ms. Where it is now:")
    ok = await _show_copies(runtime, task.uid, states)
    print()
    await talk.say("/new Позвонить маме завтра в 9 #семья", lang="ru")
    await talk.say("/list")
    await talk.press(card, "Done")
    await talk.say("/health")
    await orch.check_health()
    print()
    print(render_table(health_table(orch)))
    print()
    return ok


async def _show_copies(runtime: Runtime, uid: str, states: dict[str, OutboxState]) -> bool:
    orch = runtime.orch
    assert orch is not None
    links = await orch.store.links(uid)
    ok = True
    for name, integration in sorted(orch.integrations.items()):
        state = states.get(name)
        where = None
        if isinstance(integration, Inspectable):
            where = await integration.locate(uid, links.get(name))
        elif state is OutboxState.DONE:  # notifications, time-tracker, backup hold no copy
            where = "(keeps no copy of a task)"
        mark = "✓" if state is OutboxState.DONE and where else "✗"
        ok = ok and mark == "✓"
        print(f"  {mark} {name:<20} {state.value if state else 'no row':<8} {where or '-'}")
    return ok
