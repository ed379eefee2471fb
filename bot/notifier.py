"""Messages the bot sends on its own: admin alerts on health changes, task rollbacks to users."""

from __future__ import annotations

import asyncio

from aiogram import Bot

from bot.delivery import DeliveryQueue
from bot.rendering import esc
from bot.texts import text
from core.models import ServerStatus, Task
from core.reminders import DeliveryOutcome


class Notifier:
    """Sends out-of-band messages; failures are logged once and never reach the caller."""

    def __init__(
        self,
        bot: Bot,
        *,
        admin_chat_id: int | None,
        lang: str = "en",
        delivery: DeliveryQueue | None = None,
    ) -> None:
        self.bot = bot
        self.admin_chat_id = admin_chat_id
        self.lang = lang
        # The process's one outgoing queue: alerts and reminders share Telegram's limits.
        self.delivery = delivery if delivery is not None else DeliveryQueue(bot)
        self._pending: set[asyncio.Task[bool]] = set()

    async def send(self, chat_id: int, body: str) -> bool:
        """True once delivered; the queue paces, retries and logs any failure itself."""
        return await self.delivery.send(chat_id, body) is DeliveryOutcome.SENT

    def health_changed(
        self, server: str, old: ServerStatus, new: ServerStatus, detail: str | None
    ) -> None:
        """Health listener: one alert per transition, to the admin group when configured."""
        if self.admin_chat_id is None or old is ServerStatus.STARTING:
            return
        suffix = f"\n<i>{esc(detail[:300])}</i>" if detail else ""
        body = text(
            self.lang, "alert", server=esc(server), old=old.value, new=new.value, detail=suffix
        )
        task = asyncio.ensure_future(self.send(self.admin_chat_id, body))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def task_failed(self, task: Task, reason: str) -> None:
        body = text(self.lang, "task_failed", id=task.id, title=esc(task.title), reason=esc(reason))
        if task.chat_id:
            await self.send(task.chat_id, body)

    async def drain(self) -> None:
        """Wait for alerts still being sent (shutdown)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)
