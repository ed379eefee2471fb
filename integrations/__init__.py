"""taskbot's integrations: the MCP client layer and one module per server it speaks to."""

from integrations.deltatask import DeltaTaskIntegration
from integrations.filesystem import FilesystemIntegration
from integrations.git import GitIntegration
from integrations.manager import MCPIntegrationManager, build_integrations
from integrations.mcp import HttpServerHandle, ServerHandle, StdioServerHandle
from integrations.memory import MemoryIntegration

__all__ = [
    "DeltaTaskIntegration",
    "FilesystemIntegration",
    "GitIntegration",
    "HttpServerHandle",
    "MCPIntegrationManager",
    "MemoryIntegration",
    "ServerHandle",
    "StdioServerHandle",
    "build_integrations",
]
