"""One running taskbot: orchestrator, scheduler, monitoring, and the bot polling for updates.

Shutdown order matters, and each step says what it protects:
1. stop polling: no new updates are taken;
2. wait for in-flight handlers (aiogram finishes the ones already running);
3. stop the scheduler: no new sync or health run starts;
4. close the orchestrator: in-flight fan-outs get a bounded grace, the rest stays in
   the outbox for the next start, MCP sessions and their processes are closed;
5. close the bot's HTTP session and the monitoring server.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from aiogram import Bot, Dispatcher

from bot.app import attach_notifier, build_dispatcher, create_bot, register_commands
from bot.notifier import Notifier
from core.monitoring import MonitoringServer, write_snapshot
from core.orchestrator import EnterpriseTaskOrchestrator
from core.scheduler import TaskbotScheduler
from core.settings import AppConfig, RuntimeEnv

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
    orch: EnterpriseTaskOrchestrator | None = None
    bot: Bot | None = None
    dispatcher: Dispatcher | None = None
    monitor: MonitoringServer | None = None
    notifier: Notifier | None = None

    async def serve(self) -> None:
        """Run until `stop` is set (SIGTERM/SIGINT set it when `install_signals` ran)."""
        self.orch = orch = EnterpriseTaskOrchestrator(
            config=self.config, data_dir=self.env.data_dir
        )
        self.bot = bot = create_bot(self.env.bot_token, self.env.telegram_api_base)
        self.notifier = attach_notifier(orch, bot, self.env)
        await orch.start()
        scheduler = TaskbotScheduler()
        scheduler.every(self.config.sync_interval, orch.sync, name="sync")
        scheduler.every(self.config.health_check_interval, self._health_tick, name="health")
        if self.metrics_port is not None:
            self.monitor = MonitoringServer(orch, port=self.metrics_port)
            await self.monitor.start()
        self.dispatcher = dp = build_dispatcher(orch, self.env, clock=self.clock)
        polling: asyncio.Task[None] | None = None
        try:
            await register_commands(bot)
            scheduler.start()
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
            scheduler.shutdown()
            if self.notifier is not None:
                await self.notifier.drain()
            await orch.close()
            write_snapshot(orch, self.env.data_dir / "logs" / "monitoring_metrics.json")
            await bot.session.close()
            if self.monitor is not None:
                await self.monitor.stop()
            log.info("taskbot.stopped")

    async def _health_tick(self) -> None:
        assert self.orch is not None
        await self.orch.check_health()
        write_snapshot(self.orch, self.env.data_dir / "logs" / "monitoring_metrics.json")

    def install_signals(self) -> None:
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
