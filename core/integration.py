"""What the core needs from an external server; `integrations` supplies the implementations.

Contract: `start()` before the first call and `close()` once at the end, from any task.
`apply()` performs one change and must be idempotent by `change.task.uid`: applying the
same change twice leaves one copy remotely and returns the same external id. It raises
`IntegrationError` subclasses only: `ServerUnavailable` (may retry), `ToolFailed` (do
not). `undo()` reverses a successful `apply()` for compensation. `probe()` is the cheap
health check: it returns quietly or raises like `apply()`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

from core.models import Change, RemotePage

if TYPE_CHECKING:
    from core.settings import AppConfig

ENTRY_POINT_GROUP = "taskbot.integrations"


@runtime_checkable
class Integration(Protocol):
    """One external server as the orchestrator sees it."""

    name: str

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def apply(self, change: Change) -> str | None: ...

    async def undo(self, change: Change, external_id: str | None) -> None: ...

    async def probe(self) -> None: ...


#: Builds the enabled integrations from the config; registered as an entry point so that
#: `core` finds `integrations` without importing it (dependencies point one way).
IntegrationFactory = Callable[["AppConfig", Path], Mapping[str, Integration]]


def discover_factory() -> IntegrationFactory | None:
    """The installed integrations package's factory, or None when none is installed."""
    from importlib.metadata import entry_points

    for ep in entry_points(group=ENTRY_POINT_GROUP):
        factory: IntegrationFactory = ep.load()
        return factory
    return None


@runtime_checkable
class Inspectable(Protocol):
    """An integration that can show where a task lives on its server (demo, /task card)."""

    async def locate(self, uid: str, external_id: str | None) -> str | None:
        """A short human line naming the task's copy on the server, or None if absent."""
        ...


@runtime_checkable
class Pullable(Protocol):
    """An integration whose server is edited by others too, so its changes flow back here."""

    async def pull(self, cursor: str | None) -> RemotePage:
        """The server's changes after `cursor` (None: from the start), at most one page."""
        ...
