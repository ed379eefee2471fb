"""One running taskbot: orchestrator, scheduler, monitoring, and the bot polling for updates.

Shutdown order matters, and each step says what it protects:
1. stop polling: no new updates are taken;
2. wait for in-flight handlers (aiogram finishes the ones already running);
3. stop the scheduler: no new sync, health or reminder run starts;
4. stop claiming reminders, then close the delivery queue: it sends what fits in its grace
   and cancels the rest; the reminder service then records every outcome, handing the
   cancelled ones back to pending for the next start (so none is lost or sent twice);
   admin alerts still queued are drained;
5. close the orchestrator: in-flight fan-outs get a bounded grace, the rest stays in
   the outbox for the next start, MCP sessions and their processes are closed (the store
   last: the reminder bookkeeping in step 4 still writes to it);
6. close the bot's HTTP session and the monitoring server.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramNetworkError, TelegramUnauthorizedError

from bot.app import attach_notifier, build_dispatcher, create_bot, register_commands
from bot.datadir import DataDirLock
from bot.delivery import ChatReactivation, DeliveryQueue
from bot.dialogs import SqliteDialogStorage
from bot.handlers.reminders import ReminderCards
from bot.notifier import Notifier
from core.errors import ConfigError
from core.logging import redact
from core.monitoring import SNAPSHOT_NAME, MonitoringServer, write_snapshot
from core.orchestrator import EnterpriseTaskOrchestrator
from core.reminders import REMINDER_TICK_S, ReminderService, until_next_tick
from core.scheduler import TaskbotScheduler
from core.settings import AppConfig, RuntimeEnv
from integrations.backup import BackupIntegration

log = logging.getLogger("taskbot.runtime")


@dataclass
class Runtime:
    """Everything one taskbot process runs; `ready` is set once it takes updates."""

    config: AppConfig
    env: RuntimeEnv
    metrics_port: int | None = 0
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    stopped: asyncio.Event = field(default_factory=asyncio.Event)
    orch: EnterpriseTaskOrchestrator | None = None
    bot: Bot | None = None
    dispatcher: Dispatcher | None = None
    monitor: MonitoringServer | None = None
    notifier: Notifier | None = None
    delivery: DeliveryQueue | None = None
    reminders: ReminderService | None = None

    async def serve(self) -> None:
        """Run until `stop` is set (SIGTERM/SIGINT set it when `install_signals` ran)."""
        # One bot per data directory; `taskbot backup`/`restore` refuse while it is held.
        with DataDirLock(self.env.data_dir):
            await self._serve()

    async def _serve(self) -> None:
        self.orch = orch = EnterpriseTaskOrchestrator(
            config=self.config, data_dir=self.env.data_dir
        )
        self.bot = bot = create_bot(self.env.bot_token, self.env.telegram_api_base)
        await self._check_bot_api(bot)
        self.notifier = notifier = attach_notifier(orch, bot, self.env)
        self.delivery = delivery = notifier.delivery
        try:
            await orch.start()
        except BaseException:
            await bot.session.close()
            raise
        # The runtime's clock is read on every call, so a test can move time for reminders.
        self.reminders = reminders = ReminderService(orch, clock=lambda: self.clock())
        reminders.sender = ReminderCards(delivery, default_lang=self.config.defaults.language)
        await reminders.start()
        await delivery.track_chats(reminders.store)
        scheduler = TaskbotScheduler()
        scheduler.every(self.config.sync_interval, orch.sync, name="sync")
        scheduler.every(self.config.health_check_interval, self._health_tick, name="health")
        backups = orch.integration("backup")
        if isinstance(backups, BackupIntegration):
            scheduler.every(self.config.backup_interval, backups.scheduled_backup, name="backup")
        if self.metrics_port is not None:
            self.monitor = MonitoringServer(orch, port=self.metrics_port)
            await self.monitor.start()
        self.dispatcher = dp = build_dispatcher(orch, self.env, clock=self.clock)
        if isinstance(dp.storage, SqliteDialogStorage):
            await dp.storage.forget_abandoned()
        dp["reminders"] = reminders
        dp.update.outer_middleware(ChatReactivation(delivery))
        polling: asyncio.Task[None] | None = None
        aligning: asyncio.Task[None] | None = None
        try:
            await register_commands(bot)
            scheduler.start()
            aligning = asyncio.create_task(self._tick_reminders(scheduler, reminders))
            polling = asyncio.create_task(
                dp.start_polling(bot, handle_signals=False, close_bot_session=False)
            )
            self.ready.set()
            log.info("taskbot.started", extra={"servers": len(orch.integrations)})
            stopper = asyncio.create_task(self.stop.wait())
            await asyncio.wait({polling, stopper}, return_when=asyncio.FIRST_COMPLETED)
            stopper.cancel()
        finally:
            log.info("taskbot.stopping")
            if polling is not None and not polling.done():
                await dp.stop_polling()
                await polling
            if aligning is not None:
                aligning.cancel()
            scheduler.shutdown()
            reminders.stop()
            await delivery.close()
            await reminders.close()
            await notifier.drain()
            await orch.close()
            write_snapshot(orch, self.env.data_dir / "logs" / SNAPSHOT_NAME)
            await bot.session.close()
            if self.monitor is not None:
                await self.monitor.stop()
            log.info("taskbot.stopped")
            self.stopped.set()

    @staticmethod
    async def _tick_reminders(scheduler: TaskbotScheduler, reminders: ReminderService) -> None:
        """Start the reminder ticks just after a whole second, when reminders fall due.

        Without it the delay from due time to delivery is the scheduler's random phase,
        anywhere in 0-1 s; on the grid it is the ~10 ms offset plus the send itself.
        """
        await asyncio.sleep(until_next_tick(time.time()))
        scheduler.every(REMINDER_TICK_S, reminders.tick, name="reminders", run_now=True)

    async def _check_bot_api(self, bot: Bot) -> None:
        """Ask the Bot API who we are before starting ten servers: a bad token fails in 1 s."""
        where = self.env.telegram_api_base or "api.telegram.org"
        try:
            me = await bot.get_me()
        except TelegramUnauthorizedError as exc:
            await bot.session.close()
            raise ConfigError("the Bot API refused BOT_TOKEN (401 Unauthorized)") from exc
        except TelegramNetworkError as exc:
            await bot.session.close()
            raise ConfigError(f"cannot reach the Bot API at {redact(where)}") from exc
        log.info("bot.identified", extra={"bot_id": me.id, "username": me.username})

    async def _health_tick(self) -> None:
        assert self.orch is not None
        await self.orch.check_health()
        write_snapshot(self.orch, self.env.data_dir / "logs" / SNAPSHOT_NAME)

    def install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
