"""Builds the enabled integrations from the config, and the spec's one-call fan-out manager.

`build_integrations` is the `taskbot.integrations` entry point the core discovers.
`MCPIntegrationManager` is the standalone facade of the specification: start every enabled
server concurrently, apply a CREATE tier by tier (priority 1 first, one tier concurrently),
and report per server. The orchestrator in `core` does the durable version (outbox,
retries, breakers, compensation); this one keeps nothing between calls.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from itertools import groupby
from pathlib import Path
from typing import Any, Self

from core.errors import InputError, IntegrationError
from core.integration import Integration
from core.models import (
    DEFAULT_PRIORITY,
    Change,
    Operation,
    Task,
    TaskStatus,
    new_uid,
    utcnow,
)
from core.settings import AppConfig, ServerConfig, load_config
from integrations.backup import BackupIntegration
from integrations.calendar import CalendarIntegration
from integrations.deltatask import DeltaTaskIntegration
from integrations.filesystem import FilesystemIntegration
from integrations.git import GitIntegration
from integrations.mcp.integration import McpIntegration, default_data_dir
from integrations.memory import MemoryIntegration
from integrations.notifications import NotificationsIntegration
from integrations.semantic import SemanticMemoryIntegration
from integrations.shrimp import ShrimpIntegration
from integrations.time_tracker import TimeTrackerIntegration

log = logging.getLogger("taskbot.mcp")

#: Server name -> the module that speaks to it. Servers without one are skipped.
MODULES: dict[str, type[McpIntegration]] = {
    "deltatask": DeltaTaskIntegration,
    "memory": MemoryIntegration,
    "filesystem": FilesystemIntegration,
    "git": GitIntegration,
    "shrimp-task-manager": ShrimpIntegration,
    "hpkv-memory": SemanticMemoryIntegration,
    "calendar": CalendarIntegration,
    "notifications": NotificationsIntegration,
    "time-tracker": TimeTrackerIntegration,
    "backup": BackupIntegration,
}


def build_integrations(config: AppConfig, data_dir: Path) -> dict[str, Integration]:
    """One integration per enabled server that has a module here, in config order."""
    return {
        name: MODULES[name](server, data_dir)
        for name, server in config.enabled_servers().items()
        if name in MODULES
    }


class MCPIntegrationManager:
    """All enabled integrations behind one object: start, create a task everywhere, close."""

    def __init__(self, config: AppConfig | None = None, data_dir: Path | None = None) -> None:
        self.config = config if config is not None else load_config()
        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        self.integrations = build_integrations(self.config, self.data_dir)
        self.start_errors: dict[str, IntegrationError] = {}
        self._started = False

    async def start(self) -> None:
        """Start every server at once; a server that fails is reported, not fatal."""
        began = time.monotonic()
        names = list(self.integrations)
        outcomes = await asyncio.gather(
            *(self.integrations[name].start() for name in names), return_exceptions=True
        )
        for name, outcome in zip(names, outcomes, strict=True):
            if isinstance(outcome, IntegrationError):
                self.start_errors[name] = outcome
            elif isinstance(outcome, BaseException):
                raise outcome
        self._started = True
        log.info(
            "mcp.servers.started",
            extra={
                "servers": len(names),
                "failed": sorted(self.start_errors),
                "duration_ms": round((time.monotonic() - began) * 1000),
            },
        )

    async def close(self) -> None:
        """Stop every server at once and wait until all are gone."""
        self._started = False
        await asyncio.gather(*(i.close() for i in self.integrations.values()))

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def create_task_integrated(
        self, task_data: Mapping[str, Any]
    ) -> dict[str, dict[str, Any]]:
        """Create the task on every server; `{server: {"ok", "external_id" | "error"}}`.

        On a manager that was not started, servers are started for this call and stopped after.
        """
        task = task_from_data(task_data)
        if not self._started:
            async with self:
                return await self._fan_out(Change(Operation.CREATE, task))
        return await self._fan_out(Change(Operation.CREATE, task))

    async def _fan_out(self, change: Change) -> dict[str, dict[str, Any]]:
        results: dict[str, dict[str, Any]] = {}
        for _, tier in groupby(sorted(self.integrations, key=self._priority), key=self._priority):
            names = list(tier)
            outcomes = await asyncio.gather(*(self._apply(name, change) for name in names))
            results.update(zip(names, outcomes, strict=True))
        return results

    async def _apply(self, name: str, change: Change) -> dict[str, Any]:
        if name in self.start_errors:
            return {"ok": False, "error": str(self.start_errors[name])}
        try:
            external_id = await self.integrations[name].apply(change)
        except IntegrationError as exc:
            return {"ok": False, "error": str(exc)}
        return {"ok": True, "external_id": external_id}

    def _priority(self, name: str) -> int:
        return self.config.servers.get(name, ServerConfig()).priority


def task_from_data(data: Mapping[str, Any]) -> Task:
    """A `Task` from the spec's loose dict (`title` required); a uid is made when absent."""
    title = str(data.get("title") or "").strip()
    if not title:
        raise InputError("a task needs a title", code="title_missing")
    deadline = data.get("deadline")
    if isinstance(deadline, str):
        try:
            deadline = datetime.fromisoformat(deadline)
        except ValueError as exc:
            raise InputError(f"deadline is not ISO 8601: {deadline!r}", code="deadline") from exc
    if deadline is not None and not isinstance(deadline, datetime):
        raise InputError("deadline must be an ISO 8601 string or a datetime", code="deadline")
    if deadline is not None and deadline.tzinfo is None:
        deadline = deadline.replace(tzinfo=UTC)  # naive times in the spec's dicts mean UTC
    now = utcnow()
    return Task(
        id=int(data.get("id") or 0),
        uid=str(data.get("uid") or new_uid()),
        title=title,
        description=str(data.get("description") or ""),
        priority=int(data.get("priority") or DEFAULT_PRIORITY),
        deadline=deadline,
        tags=tuple(str(tag) for tag in data.get("tags") or ()),
        status=TaskStatus(data.get("status") or TaskStatus.OPEN),
        chat_id=int(data.get("chat_id") or 0),
        author_id=data.get("author_id"),
        assignee=data.get("assignee"),
        created_at=now,
        updated_at=now,
    )
