"""`/metrics` (Prometheus text) and `/healthz` on a small aiohttp server, plus JSON snapshots."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

if TYPE_CHECKING:
    from core.orchestrator import EnterpriseTaskOrchestrator


class MonitoringServer:
    """Serves the orchestrator's health and metrics on 127.0.0.1 by default."""

    def __init__(
        self, orch: EnterpriseTaskOrchestrator, *, host: str = "127.0.0.1", port: int = 0
    ) -> None:
        self.orch = orch
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        if server is not None and self.port == 0:
            sockets = getattr(server, "sockets", None) or []
            if sockets:
                self.port = sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _healthz(self, request: web.Request) -> web.Response:
        status = self.orch.get_health_status()
        code = 503 if status["overall"] == "ERROR" else 200
        return web.json_response(status, status=code)

    async def _metrics(self, request: web.Request) -> web.Response:
        health = self.orch.get_health_status()["server_health"]
        assert isinstance(health, dict)
        body = self.orch.metrics.render_prometheus(
            outbox_depth=await self.orch.outbox_depth(),
            status={n: str(h["status"]) for n, h in health.items()},
            breaker={n: b.state.value for n, b in self.orch.breakers.items()},
        )
        return web.Response(text=body, content_type="text/plain", charset="utf-8")


#: Written under `<data_dir>/logs/` after each health check; `taskbot health` reads it.
SNAPSHOT_NAME = "monitoring_metrics.json"


def write_snapshot(orch: EnterpriseTaskOrchestrator, path: Path) -> None:
    """Write `monitoring_metrics.json` atomically: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    data = {"health": orch.get_health_status(), "statistics": orch.get_statistics()}
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
    os.replace(tmp, path)
