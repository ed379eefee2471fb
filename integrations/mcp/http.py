"""`HttpServerHandle`: a remote MCP server over streamable HTTP, supervised like a child."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx2
from mcp.client._transport import TransportStreams
from mcp.client.streamable_http import streamable_http_client

from integrations.mcp.handle import DEFAULT_START_TIMEOUT, ServerHandle, _Run

#: Connect/write bound of one HTTP exchange; calls are bounded again by their own timeout.
HTTP_CONNECT_TIMEOUT = 10.0
#: Read bound of a response or event stream held open by the server.
HTTP_READ_TIMEOUT = 300.0


class HttpServerHandle(ServerHandle):
    """A server at `url`; `headers` (an API key among them) go with every request."""

    def __init__(
        self,
        name: str,
        url: str,
        headers: Mapping[str, str] | None = None,
        *,
        start_timeout: float = DEFAULT_START_TIMEOUT,
    ) -> None:
        super().__init__(name, start_timeout=start_timeout)
        self.url = url
        # Private and kept out of repr and logs: it may hold a credential.
        self._headers = dict(headers or {})

    def __repr__(self) -> str:
        state = "up" if self.is_up else "down"
        return f"<HttpServerHandle {self.name} {state} url={self.url}>"

    @asynccontextmanager
    async def _connect(self, run: _Run) -> AsyncIterator[TransportStreams]:
        timeout = httpx2.Timeout(HTTP_CONNECT_TIMEOUT, read=HTTP_READ_TIMEOUT)
        async with (
            httpx2.AsyncClient(headers=self._headers, timeout=timeout) as client,
            streamable_http_client(self.url, http_client=client) as streams,
        ):
            yield streams
