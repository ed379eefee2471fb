"""The one place where third-party failures become taskbot's `IntegrationError` family.

Callers `raise translate(exc, ...) from exc`; nothing else in the client layer inspects SDK,
anyio, httpx or OS exceptions. Messages carry the kind of failure, never tool arguments or
results (a validation error's text would quote the server's data, so only its size goes in).
"""

from __future__ import annotations

import asyncio

import anyio
import httpx2
from mcp.client.extension import UnexpectedClaimedResult
from mcp.shared.exceptions import MCPError
from mcp_types import CONNECTION_CLOSED, REQUEST_TIMEOUT
from pydantic import ValidationError

from core.errors import IntegrationError, ServerUnavailable, ToolFailed

#: Stream failures that mean the peer is gone, whatever the transport.
_BROKEN = (
    anyio.BrokenResourceError,
    anyio.ClosedResourceError,
    anyio.EndOfStream,
    ConnectionError,
    EOFError,
)


class UnparsableLine(Exception):
    """A line a server wrote to stdout that is not JSON-RPC; carries its size, not its bytes."""

    def __init__(self, size: int) -> None:
        super().__init__(f"server wrote {size} bytes that are not JSON-RPC")
        self.size = size


def translate(
    exc: BaseException,
    *,
    server: str,
    tool: str | None,
    timeout: float | None = None,
) -> IntegrationError:
    """The taskbot error for `exc`; callers chain it with `from exc`."""
    exc = _innermost(exc)
    if isinstance(exc, IntegrationError):
        if exc.tool is None:
            exc.tool = tool  # e.g. a failed restart, met while calling this tool
        return exc
    if isinstance(exc, TimeoutError):
        return ServerUnavailable(_timed_out(timeout), server=server, tool=tool)
    if isinstance(exc, MCPError):
        return _from_mcp_error(exc, server=server, tool=tool, timeout=timeout)
    if isinstance(exc, _BROKEN):
        reason = f"connection lost ({type(exc).__name__})"
        return ServerUnavailable(reason, server=server, tool=tool)
    if isinstance(exc, OSError):
        reason = exc.strerror or type(exc).__name__
        subject = f": {exc.filename}" if exc.filename else ""
        return ServerUnavailable(f"{reason}{subject}", server=server, tool=tool)
    if isinstance(exc, httpx2.TransportError):
        return ServerUnavailable(f"HTTP transport: {type(exc).__name__}", server=server, tool=tool)
    if isinstance(exc, ValidationError):
        message = f"malformed reply ({exc.error_count()} validation errors)"
        return ToolFailed(message, server=server, tool=tool)
    if isinstance(exc, RuntimeError | UnexpectedClaimedResult | ValueError):
        return ToolFailed(f"unusable reply ({type(exc).__name__})", server=server, tool=tool)
    return ToolFailed(f"unexpected {type(exc).__name__}", server=server, tool=tool)


def _from_mcp_error(
    exc: MCPError,
    *,
    server: str,
    tool: str | None,
    timeout: float | None,
) -> IntegrationError:
    if exc.code == REQUEST_TIMEOUT:
        return ServerUnavailable(_timed_out(timeout), server=server, tool=tool)
    if exc.code == CONNECTION_CLOSED:
        return ServerUnavailable("connection closed", server=server, tool=tool)
    return ToolFailed(f"error {exc.code}: {one_line(exc.message)}", server=server, tool=tool)


def _innermost(exc: BaseException) -> BaseException:
    """The first real failure inside (possibly nested) task-group exception groups."""
    while isinstance(exc, BaseExceptionGroup):
        members = [e for e in exc.exceptions if not isinstance(e, asyncio.CancelledError)]
        exc = (members or list(exc.exceptions))[0]
    return exc


def _timed_out(timeout: float | None) -> str:
    return "timed out" if timeout is None else f"timed out after {timeout:g}s"


def one_line(text: str, limit: int = 300) -> str:
    """One line of at most `limit` characters, so a server's error text stays log-sized."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
