"""MCP client layer: one supervised handle per server, over stdio or streamable HTTP.

Lifecycle contract. A `ServerHandle` owns, for each spawn, the child process (or HTTP
client), its stream pair and its `ClientSession`, all entered with `async with` by ONE owner
task that also leaves them, so every anyio cancel scope exits in the task that entered it.
`start()` creates that owner and returns once the server has answered `initialize` and
`tools/list`, or raises `ServerUnavailable` carrying the tail of the child's stderr. `call()`
and `ping()` may come from any task, concurrently; `close()` stops the owner, which ends the
session, closes the child's stdin, escalates to SIGTERM and SIGKILL if needed and reaps it;
`close()` may be repeated. When the child exits or a stream breaks, calls in flight fail at
once with `ServerUnavailable`, the handle is down, and the next call restarts it after a
backoff (0.5 s doubling to 30 s); two timed-out calls in a row mean a hung server, which is
killed and restarted the same way. Callers only ever see `IntegrationError` subclasses: every
SDK, anyio, HTTP and OS error is converted in `errors.translate`.
"""

from integrations.mcp.handle import ServerHandle
from integrations.mcp.http import HttpServerHandle
from integrations.mcp.integration import McpIntegration, default_data_dir
from integrations.mcp.launch import Launch, make_handle
from integrations.mcp.stdio import StdioServerHandle

__all__ = [
    "HttpServerHandle",
    "Launch",
    "McpIntegration",
    "ServerHandle",
    "StdioServerHandle",
    "default_data_dir",
    "make_handle",
]
