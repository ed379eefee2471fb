"""taskbot's integrations: the MCP client layer and one module per server it speaks to.

Names resolve lazily: the servers under `integrations.servers` run as their own processes
(`python -m integrations.servers.deltatask`) and must not load the client layer or `core`
just because Python imports this package first.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from integrations.backup import BackupIntegration
    from integrations.calendar import CalendarIntegration
    from integrations.deltatask import DeltaTaskIntegration
    from integrations.filesystem import FilesystemIntegration
    from integrations.git import GitIntegration
    from integrations.manager import MCPIntegrationManager, build_integrations
    from integrations.mcp import HttpServerHandle, ServerHandle, StdioServerHandle
    from integrations.memory import MemoryIntegration
    from integrations.notifications import NotificationsIntegration
    from integrations.semantic import SemanticMemoryIntegration
    from integrations.shrimp import ShrimpIntegration
    from integrations.time_tracker import TimeTrackerIntegration

_WHERE = {
    "BackupIntegration": "integrations.backup",
    "CalendarIntegration": "integrations.calendar",
    "NotificationsIntegration": "integrations.notifications",
    "TimeTrackerIntegration": "integrations.time_tracker",
    "DeltaTaskIntegration": "integrations.deltatask",
    "FilesystemIntegration": "integrations.filesystem",
    "GitIntegration": "integrations.git",
    "MCPIntegrationManager": "integrations.manager",
    "build_integrations": "integrations.manager",
    "HttpServerHandle": "integrations.mcp",
    "ServerHandle": "integrations.mcp",
    "StdioServerHandle": "integrations.mcp",
    "MemoryIntegration": "integrations.memory",
    "SemanticMemoryIntegration": "integrations.semantic",
    "ShrimpIntegration": "integrations.shrimp",
}

__all__ = [
    "BackupIntegration",
    "CalendarIntegration",
    "DeltaTaskIntegration",
    "FilesystemIntegration",
    "GitIntegration",
    "HttpServerHandle",
    "MCPIntegrationManager",
    "MemoryIntegration",
    "NotificationsIntegration",
    "SemanticMemoryIntegration",
    "ServerHandle",
    "ShrimpIntegration",
    "StdioServerHandle",
    "TimeTrackerIntegration",
    "build_integrations",
]


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'integrations' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
