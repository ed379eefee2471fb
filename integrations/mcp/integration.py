"""`McpIntegration`: what every server module shares on top of its `ServerHandle`."""

from __future__ import annotations

import os
from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Self

from core.errors import ToolFailed
from core.models import Change, Operation, Task, TaskStatus
from core.settings import ServerConfig
from integrations.mcp.handle import ServerHandle
from integrations.mcp.launch import Launch, make_handle


def default_data_dir() -> Path:
    """Where server state lives when no directory is given: $TASKBOT_DATA_DIR or ./data."""
    return Path(os.environ.get("TASKBOT_DATA_DIR") or "data")


def snapshot(change: Change) -> Task:
    """The task as this change leaves it, whatever status the caller's copy carries."""
    task = change.task
    if change.op is Operation.COMPLETE and task.status is not TaskStatus.DONE:
        return task.evolve(status=TaskStatus.DONE)
    if change.op is Operation.DELETE and task.status is not TaskStatus.DELETED:
        return task.evolve(status=TaskStatus.DELETED)
    return task


class McpIntegration(ABC):
    """One server as an `Integration`: state under `<data_dir>/servers/<name>/`, timed calls."""

    name: str  # each subclass sets it: the server's key in the config
    #: A cheap read-only tool the health check calls after the ping: a server can answer
    #: pings from its transport loop while its tools are broken, and only a call shows it.
    probe_tool: tuple[str, Mapping[str, Any]] | None = None

    def __init__(self, config: ServerConfig | None = None, data_dir: Path | None = None) -> None:
        self.config = config if config is not None else ServerConfig()
        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        self.state_dir = (self.data_dir / "servers" / self.name).resolve()
        self.handle: ServerHandle = make_handle(self.name, self.config, self._launch())

    @abstractmethod
    def _launch(self) -> Launch:
        """The local stdio launch used when the config names no command or URL."""

    async def _prepare(self) -> None:
        """Make the state the server expects before it starts (directories, a repository)."""
        self.state_dir.mkdir(parents=True, exist_ok=True)

    async def start(self) -> None:
        await self._prepare()
        await self.handle.start()

    async def close(self) -> None:
        await self.handle.close()

    async def probe(self) -> None:
        await self.handle.ping(self.config.timeout)
        if self.probe_tool is not None:
            tool, arguments = self.probe_tool
            await self._call(tool, arguments)

    async def apply(self, change: Change) -> str | None:
        """Make the server reflect the change; an UNDO change is the same as `undo()`."""
        if change.op is Operation.UNDO:
            await self.undo(change, change.external_id)
            return None
        return await self._apply(change)

    async def undo(self, change: Change, external_id: str | None) -> None:
        """Remove what the task's CREATE left on the server (compensation); idempotent."""
        if change.op not in (Operation.CREATE, Operation.UNDO):
            # LIMIT: an update or a completion cannot be reversed: the prior state is not
            # kept. Compensation only ever undoes creates; keeping before-images would lift it.
            raise ToolFailed(f"cannot undo the {change.op.value} of a task", server=self.name)
        await self._erase(change, external_id)

    @abstractmethod
    async def _apply(self, change: Change) -> str | None:
        """CREATE, UPDATE, COMPLETE or DELETE, idempotent by task uid."""

    @abstractmethod
    async def _erase(self, change: Change, external_id: str | None) -> None:
        """Remove every trace of the task; nothing to remove is success."""

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def _call(self, tool: str, arguments: Mapping[str, Any] | None = None) -> object:
        return await self.handle.call(tool, arguments, timeout=self.config.timeout)

    async def _call_dict(
        self,
        tool: str,
        arguments: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        value = await self._call(tool, arguments)
        if not isinstance(value, dict):
            raise self._unexpected(tool, "an object", value)
        return value

    async def _call_list(self, tool: str, arguments: Mapping[str, Any] | None = None) -> list[Any]:
        value = await self._call(tool, arguments)
        if not isinstance(value, list):
            raise self._unexpected(tool, "a list", value)
        return value

    async def _call_text(self, tool: str, arguments: Mapping[str, Any] | None = None) -> str:
        value = await self._call(tool, arguments)
        if isinstance(value, dict) and set(value) == {"content"}:
            value = value["content"]  # the npm servers mirror their text as {"content": ...}
        if not isinstance(value, str):
            raise self._unexpected(tool, "text", value)
        return value

    def _unexpected(self, tool: str, expected: str, value: object) -> ToolFailed:
        got = type(value).__name__
        return ToolFailed(f"expected {expected}, got {got}", server=self.name, tool=tool)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.handle!r}>"
