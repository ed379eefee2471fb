"""A tiny MCP server that misbehaves on request, for the client layer's fault tests.

Run: python tests/faults/fixture_server.py            (stdio)
     python tests/faults/fixture_server.py --http PORT (streamable HTTP on 127.0.0.1)
Env FIXTURE_FAIL_START=<text>: write <text> to stderr and exit 2 before speaking MCP.
Env FIXTURE_MUTE=1: start but never answer anything (a server stuck before its handshake).
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from collections import Counter

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

server = MCPServer("fixture", log_level="WARNING")
_calls: Counter[str] = Counter()
# The SDK diverts fd 1 to stderr while it serves; a copy taken first still reaches the client.
_WIRE = os.dup(1)


@server.tool()
def echo(text: str) -> dict[str, str]:
    """Return the text as given."""
    _calls["echo"] += 1
    return {"text": text}


@server.tool()
def echo_list(items: list[str]) -> list[str]:
    """Return the list; the SDK wraps it as {"result": [...]}."""
    _calls["echo_list"] += 1
    return items


@server.tool()
def sleep(seconds: float) -> str:
    """Block this call (in a worker thread) for `seconds`."""
    _calls["sleep"] += 1
    time.sleep(seconds)
    return "slept"


@server.tool()
def crash(code: int = 3) -> str:
    """Exit the whole process at once, mid-call."""
    _calls["crash"] += 1
    sys.stderr.write("fixture: crashing on purpose\n")
    sys.stderr.flush()
    os._exit(code)


@server.tool()
def garbage(lines: int = 3) -> str:
    """Write junk lines straight to stdout, then answer normally."""
    _calls["garbage"] += 1
    for n in range(lines):
        os.write(_WIRE, b"this is not json-rpc %d\n\xff\xfe{broken\n" % n)
    return "after garbage"


@server.tool()
def error(message: str = "refused on purpose") -> str:
    """Fail as a tool: the client sees isError."""
    _calls["error"] += 1
    raise ToolError(message)


@server.tool()
def error_dict() -> dict[str, str]:
    """Fail DeltaTask-style: a normal result shaped {"error": ...}."""
    _calls["error_dict"] += 1
    return {"error": "Task not found"}


@server.tool()
def calls() -> dict[str, int]:
    """How many times each tool ran in this process."""
    return dict(_calls)


@server.tool()
def pid() -> int:
    """This server's process id."""
    return os.getpid()


@server.tool()
async def roots(ctx: Context) -> list[str]:
    """The roots the client offers when asked (shrimp-task-manager asks)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # roots are deprecated in 2026-07-28, still used
        listing = await ctx.session.list_roots()
    return [str(root.uri) for root in listing.roots]


@server.tool()
def header(name: str, ctx: Context) -> str:
    """The value of one HTTP request header ('' over stdio)."""
    request = getattr(ctx.request_context, "request", None)
    headers = getattr(request, "headers", None)
    return "" if headers is None else str(headers.get(name, ""))


def main() -> None:
    failure = os.environ.get("FIXTURE_FAIL_START")
    if failure:
        sys.stderr.write(failure + "\n")
        sys.exit(2)
    if os.environ.get("FIXTURE_MUTE"):
        time.sleep(3600)
    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()


if __name__ == "__main__":
    main()
