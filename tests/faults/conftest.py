"""Fault tests: real server processes, broken on purpose, bounded in time and count."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable
from pathlib import Path
from typing import Any

import pytest

from core.orchestrator import EnterpriseTaskOrchestrator
from core.settings import SERVER_NAMES, AppConfig, load_config

FIXTURE_SERVER = Path(__file__).with_name("fixture_server.py")


def fault_config(
    servers: Iterable[str],
    *,
    overrides: dict[str, dict[str, Any]] | None = None,
    threshold: int = 5,
    cooldown: float = 1.0,
) -> AppConfig:
    """Only `servers` enabled, short cooldown, per-server overrides (timeouts, commands)."""
    wanted = set(servers)
    changes: dict[str, dict[str, Any]] = {n: {"enabled": n in wanted} for n in SERVER_NAMES}
    for name, fields in (overrides or {}).items():
        changes[name] = {**changes[name], **fields}
    config = load_config().with_servers(**changes)
    return config.model_copy(
        update={"circuit_breaker_threshold": threshold, "circuit_breaker_cooldown": cooldown}
    )


async def no_sleep(_seconds: float) -> None:
    """Retry backoff without the wait: the tests count attempts, not seconds."""
    await asyncio.sleep(0)


async def drain(orch: EnterpriseTaskOrchestrator, *, within: float = 60.0) -> float:
    """Run the sync job until the outbox is empty; returns seconds taken."""
    began = time.monotonic()
    while time.monotonic() - began < within:
        await orch.sync()
        if not await orch.outbox_depth():
            return time.monotonic() - began
        await asyncio.sleep(0.2)
    raise AssertionError(f"outbox still holds {await orch.outbox_depth()} after {within}s")


OrchFactory = Callable[..., Awaitable[EnterpriseTaskOrchestrator]]


@pytest.fixture
async def orchestrator(tmp_path: Path) -> AsyncIterator[OrchFactory]:
    """Factory for started orchestrators on tmp_path/data; all are closed at test end."""
    opened: list[EnterpriseTaskOrchestrator] = []

    async def make(config: AppConfig, **kwargs: Any) -> EnterpriseTaskOrchestrator:
        orch = EnterpriseTaskOrchestrator(config=config, data_dir=tmp_path / "data", **kwargs)
        await orch.start()
        opened.append(orch)
        return orch

    yield make
    for orch in opened:
        await orch.close()
