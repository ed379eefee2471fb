"""/healthz and /metrics as an operator's scraper sees them, from a real orchestrator."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp

from core.monitoring import MonitoringServer, write_snapshot
from core.orchestrator import EnterpriseTaskOrchestrator
from core.settings import SERVER_NAMES, load_config


async def test_health_and_metrics_endpoints_report_servers_calls_and_outbox(tmp_path: Path) -> None:
    config = load_config().with_servers(**{n: {"enabled": n == "deltatask"} for n in SERVER_NAMES})
    async with EnterpriseTaskOrchestrator(config=config, data_dir=tmp_path) as orch:
        task = await orch.create_task("scrape me")
        await orch.wait_synced(task.uid, within=20)
        await orch.check_health()
        monitor = MonitoringServer(orch, port=0)
        await monitor.start()
        try:
            base = f"http://127.0.0.1:{monitor.port}"
            async with aiohttp.ClientSession() as http:
                async with http.get(f"{base}/healthz") as resp:
                    assert resp.status == 200
                    health = await resp.json()
                async with http.get(f"{base}/metrics") as resp:
                    assert resp.status == 200
                    metrics = await resp.text()
        finally:
            await monitor.stop()
        write_snapshot(orch, tmp_path / "logs" / "monitoring_metrics.json")

    assert health["overall"] == "ONLINE"
    assert health["server_health"]["deltatask"]["status"] == "ONLINE"
    assert health["server_health"]["memory"]["status"] == "DISABLED"
    assert 'taskbot_server_up{server="deltatask",status="ONLINE"} 1' in metrics
    assert 'taskbot_calls_total{server="deltatask",outcome="ok"} 1' in metrics
    assert 'taskbot_breaker_open{server="deltatask",state="closed"} 0' in metrics
    assert "taskbot_tasks_created_total 1" in metrics
    snapshot = json.loads((tmp_path / "logs" / "monitoring_metrics.json").read_text())
    assert snapshot["statistics"]["tasks_created"] == 1
    assert snapshot["statistics"]["outbox_pending"] == 0
    assert not list((tmp_path / "logs").glob("*.tmp"))
