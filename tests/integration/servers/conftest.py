"""Drive the project's own MCP servers as real processes over stdio with the official client.

`open_server` owns one server process and its session inside `async with`. `shared_server`
keeps that context in a task of its own, so a module-scoped fixture can hand one session to
many tests (anyio cancel scopes must be left by the task that entered them).
"""

from __future__ import annotations

import asyncio
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.types import CallToolResult, TextContent

PROJECT_ROOT = Path(__file__).resolve().parents[3]
# Bounds every request, so a wedged server fails one test instead of hanging the suite.
CALL_TIMEOUT_SECONDS = 30.0


class ToolClient:
    """A session with the two questions tests ask: what did the tool return, what was the error."""

    def __init__(self, session: ClientSession, stderr_path: Path) -> None:
        self.session = session
        self.stderr_path = stderr_path

    async def raw(self, tool: str, **arguments: Any) -> CallToolResult:
        return await self.session.call_tool(tool, arguments)

    async def call(self, tool: str, **arguments: Any) -> Any:
        """Call a tool that must succeed; give its structured result (lists unwrapped)."""
        result = await self.raw(tool, **arguments)
        assert not result.is_error, f"{tool} failed: {_texts(result)}"
        data = result.structured_content
        assert data is not None, f"{tool} returned no structured content"
        return data["result"] if set(data) == {"result"} else data

    async def fail(self, tool: str, **arguments: Any) -> str:
        """Call a tool that must fail; give its error message, checked in both result forms."""
        result = await self.raw(tool, **arguments)
        assert result.is_error, f"{tool} unexpectedly succeeded: {result.structured_content}"
        assert result.structured_content is not None
        message = result.structured_content["error"]
        assert json.loads(_texts(result)[0]) == {"error": message}
        return str(message)


def _texts(result: CallToolResult) -> list[str]:
    return [block.text for block in result.content if isinstance(block, TextContent)]


@asynccontextmanager
async def open_server(name: str, env: dict[str, str], log_dir: Path) -> AsyncIterator[ToolClient]:
    """Spawn `python -m integrations.servers.<name>` with env and yield an initialised client."""
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", f"integrations.servers.{name}"],
        env=env,
        cwd=PROJECT_ROOT,
    )
    stderr_path = log_dir / f"{name}.stderr.log"
    with stderr_path.open("w") as errlog:
        async with (
            stdio_client(params, errlog=errlog) as (read, write),
            ClientSession(read, write, read_timeout_seconds=CALL_TIMEOUT_SECONDS) as session,
        ):
            await asyncio.wait_for(session.initialize(), CALL_TIMEOUT_SECONDS)
            yield ToolClient(session, stderr_path)


@asynccontextmanager
async def shared_server(name: str, env: dict[str, str], log_dir: Path) -> AsyncIterator[ToolClient]:
    """Like open_server, but the session lives in its own task so fixtures can span tests."""
    ready: asyncio.Future[ToolClient] = asyncio.get_running_loop().create_future()
    stop = asyncio.Event()

    async def hold() -> None:
        async with open_server(name, env, log_dir) as client:
            ready.set_result(client)
            await stop.wait()

    owner = asyncio.create_task(hold())
    watched: set[asyncio.Future[Any]] = {owner, ready}
    done, _ = await asyncio.wait(watched, return_when=asyncio.FIRST_COMPLETED)
    if owner in done:
        owner.result()  # raises the start-up failure
    try:
        yield ready.result()
    finally:
        stop.set()
        await asyncio.wait_for(owner, CALL_TIMEOUT_SECONDS)
