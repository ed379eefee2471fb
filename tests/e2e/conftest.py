"""The whole bot through the local Telegram sandbox: real dispatcher, real store, real servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.runtime import Runtime
from bot.sandbox import TelegramSandbox
from core.orchestrator import EnterpriseTaskOrchestrator
from core.settings import SERVER_NAMES, RuntimeEnv, load_config

TOKEN = "4242:e2e-sandbox-token"
ADMIN = 900
ADMIN_GROUP = -1_009_000
# Friday 2026-12-04 12:00 UTC: quick-add phrases resolve against this instant.
FIXED_NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)

Json = dict[str, Any]


@dataclass
class BotWorld:
    sb: TelegramSandbox
    runtime: Runtime

    @property
    def orch(self) -> EnterpriseTaskOrchestrator:
        assert self.runtime.orch is not None
        return self.runtime.orch

    async def say(
        self,
        text: str,
        *,
        chat_id: int = 1,
        user_id: int | None = None,
        lang: str = "en",
        replies: int = 1,
        chat_type: str = "private",
        username: str | None = None,
    ) -> list[Json]:
        """Send `text` as a user and return the bot's next `replies` messages in that chat."""
        self.sb.send_text(
            chat_id,
            text,
            user_id=user_id if user_id is not None else chat_id,
            language_code=lang,
            chat_type=chat_type,  # type: ignore[arg-type]
            username=username,
        )
        return await self.sb.wait_for_messages(chat_id, count=replies, timeout=10)

    async def stop(self) -> None:
        """Stop the bot as SIGTERM would (the sandbox stays up for a restart)."""
        self.runtime.stop.set()
        await asyncio.wait_for(self.runtime.stopped.wait(), 60)

    async def press(self, message: Json, data: str, *, user_id: int | None = None) -> Json:
        """Press a button and return the callback answer the user saw."""
        answers = len(self.sb.callback_answers)
        self.sb.press(message, data, user_id=user_id)
        await self.sb.wait_until(
            lambda: len(self.sb.callback_answers) > answers, 10, "a callback answer"
        )
        return self.sb.callback_answers[-1]


StartBot = Callable[..., Awaitable[BotWorld]]


@pytest.fixture
async def start_bot(tmp_path: Path) -> AsyncIterator[StartBot]:
    """Factory: start sandbox + bot + the named servers; everything stops at test end."""
    stack: list[tuple[TelegramSandbox, Runtime, asyncio.Task[None]]] = []

    async def start(
        servers: Iterable[str] = ("deltatask",),
        overrides: dict[str, dict[str, Any]] | None = None,
        *,
        admin_ids: Iterable[int] = (ADMIN,),
        allowed: Iterable[int] = (),
        per_minute: int | None = None,
        now: datetime = FIXED_NOW,
        data_dir: Path | None = None,
        sync_interval: float | None = None,
    ) -> BotWorld:
        wanted = set(servers)
        changes: dict[str, dict[str, Any]] = {n: {"enabled": n in wanted} for n in SERVER_NAMES}
        for name, fields in (overrides or {}).items():
            changes[name] = {**changes[name], **fields}
        config = load_config().with_servers(**changes)
        if per_minute is not None:
            config = config.model_copy(
                update={
                    "security": config.security.model_copy(
                        update={
                            "rate_limiting": config.security.rate_limiting.model_copy(
                                update={"requests_per_minute": per_minute}
                            )
                        }
                    )
                }
            )
        if sync_interval is not None:
            config = config.model_copy(update={"sync_interval": sync_interval})
        sb = TelegramSandbox(token=TOKEN)
        await sb.start()
        env = RuntimeEnv(
            bot_token=TOKEN,
            telegram_api_base=sb.base_url,
            data_dir=data_dir or tmp_path / "data",
            admin_chat_id=ADMIN_GROUP,
            admin_ids=frozenset(admin_ids),
            allowed_user_ids=frozenset(allowed),
        )
        runtime = Runtime(config=config, env=env, metrics_port=None, clock=lambda: now)
        serving = asyncio.create_task(runtime.serve())
        stack.append((sb, runtime, serving))
        ready = asyncio.create_task(runtime.ready.wait())
        await asyncio.wait({serving, ready}, timeout=60, return_when=asyncio.FIRST_COMPLETED)
        if serving.done():
            serving.result()
        assert runtime.ready.is_set(), "bot did not start within 60 s"
        return BotWorld(sb, runtime)

    yield start
    for sb, runtime, serving in reversed(stack):
        runtime.stop.set()
        await asyncio.wait_for(serving, 60)
        await sb.stop()
