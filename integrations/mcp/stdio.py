"""`StdioServerHandle`: an MCP server as a child process speaking JSON-RPC lines on stdio.

Why not the SDK's `stdio_client`: it hides the process, so a supervisor could neither learn
the pid, nor read the exit code, nor kill a hung server at once, and the child's stderr could
only go to a file. This transport keeps the SDK's message parsing and `ClientSession` and owns
the process itself. The child runs in its own session (process group) so that a terminal's
Ctrl-C reaches the bot first and the bot stops its servers in order; stopping closes stdin,
waits `STOP_GRACE`, then SIGTERMs and finally SIGKILLs the whole group. The exit is observed
through asyncio's child watcher, which also reaps the child, so no zombie stays behind.
How the process comes to be is `_start_child`'s business: `ForkedServerHandle`
(integrations/mcp/forking.py) forks it from a fork server instead; the rest is the same.
LIMIT: if the bot itself is SIGKILLed, nothing signals the children; each lives until it
notices its closed stdin (all servers here do at once). PR_SET_PDEATHSIG in the child would
remove the dependency, at the cost of a preexec hook.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.client._transport import TransportStreams
from mcp.client.stdio import get_default_environment
from mcp.shared.message import SessionMessage
from mcp_types import jsonrpc_message_adapter

from integrations.mcp.errors import UnparsableLine
from integrations.mcp.handle import DEFAULT_START_TIMEOUT, ServerHandle, _Run

#: Time a server gets to exit by itself once its stdin is closed.
STOP_GRACE = 2.0
#: Time between SIGTERM and SIGKILL for a server that ignored its closed stdin.
TERM_GRACE = 1.0
#: Time for the child watcher to report a SIGKILLed child; only a stuck kernel runs it out.
REAP_TIMEOUT = 2.0
#: Longest stdout line accepted (one JSON-RPC message); a longer one is dropped as noise.
MAX_LINE_BYTES = 16 * 1024 * 1024
#: Lines of stderr kept for error messages.
STDERR_LINES = 50
#: Characters kept of one stderr line.
STDERR_LINE_CHARS = 400


class StderrTail:
    """The last lines a child wrote to stderr: kept for error messages, not the terminal."""

    def __init__(self, max_lines: int = STDERR_LINES) -> None:
        self._lines: deque[str] = deque(maxlen=max_lines)
        self._partial = b""

    def feed(self, chunk: bytes) -> None:
        *complete, self._partial = (self._partial + chunk).split(b"\n")
        for raw in complete:
            self._add(raw)
        if len(self._partial) > STDERR_LINE_CHARS * 4:
            self._add(self._partial)
            self._partial = b""

    def lines(self) -> list[str]:
        pending = [self._partial.decode("utf-8", "replace")] if self._partial.strip() else []
        return [*self._lines, *pending]

    def text(self, last: int = 8) -> str:
        return "\n".join(self.lines()[-last:])

    def _add(self, raw: bytes) -> None:
        line = raw.decode("utf-8", "replace").rstrip()
        if line:
            self._lines.append(line[:STDERR_LINE_CHARS])


class Child(ABC):
    """A started server process as the transport sees it: a pid, three pipes, an exit.

    `exited` is set once the process is gone and reaped; `release()` frees what is left
    (pipes, bookkeeping) after that, and is called exactly once per child.
    """

    pid: int
    stdin: asyncio.StreamWriter
    stdout: asyncio.StreamReader
    stderr: asyncio.StreamReader
    exited: asyncio.Event

    @property
    @abstractmethod
    def returncode(self) -> int | None:
        """Exit code, negative for a signal; None while running or when nobody saw it."""

    @abstractmethod
    async def release(self) -> None:
        """Close what remains of the child once it has exited (or was given up on)."""


class _ChildProtocol(asyncio.subprocess.SubprocessStreamProtocol):
    """Stream protocol that also announces the child's exit (reported after reaping)."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(limit=MAX_LINE_BYTES, loop=loop)
        self.exited = asyncio.Event()

    def process_exited(self) -> None:
        super().process_exited()
        self.exited.set()


class _SpawnedChild(Child):
    """A child this process spawned itself: asyncio's child watcher reaps it."""

    def __init__(self, transport: asyncio.SubprocessTransport, protocol: _ChildProtocol) -> None:
        assert protocol.stdin and protocol.stdout and protocol.stderr
        self._transport = transport
        self.pid = transport.get_pid()
        self.stdin, self.stdout, self.stderr = protocol.stdin, protocol.stdout, protocol.stderr
        self.exited = protocol.exited

    @property
    def returncode(self) -> int | None:
        return self._transport.get_returncode()

    async def release(self) -> None:
        self._transport.close()


class StdioServerHandle(ServerHandle):
    """A server launched as `command args...` and spoken to over its stdin and stdout."""

    def __init__(
        self,
        name: str,
        command: str,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        *,
        start_timeout: float = DEFAULT_START_TIMEOUT,
    ) -> None:
        super().__init__(name, start_timeout=start_timeout)
        self.command = command
        self.args = tuple(args)
        self.cwd = Path(cwd) if cwd is not None else None
        self.stderr = StderrTail()
        # Only a safe base environment is inherited (no bot token, no API keys).
        self._env = get_default_environment() | dict(env or {})

    def _diagnostics(self) -> str:
        tail = self.stderr.text()
        return f"; stderr: {tail}" if tail else ""

    async def _start_child(self) -> Child:
        """Spawn the server; a subclass may obtain the process another way."""
        loop = asyncio.get_running_loop()
        transport, protocol = await loop.subprocess_exec(
            lambda: _ChildProtocol(loop),
            self.command,
            *self.args,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self._env,
            cwd=self.cwd,
            start_new_session=True,
        )
        return _SpawnedChild(transport, protocol)

    @asynccontextmanager
    async def _connect(self, run: _Run) -> AsyncIterator[TransportStreams]:
        child = await self._start_child()
        run.pid = child.pid
        to_session, from_server = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        to_server, from_session = anyio.create_memory_object_stream[SessionMessage](0)
        try:
            async with anyio.create_task_group() as pumps:
                pumps.start_soon(self._pump_stdout, child, to_session, run)
                pumps.start_soon(self._pump_stdin, child, from_session, run)
                pumps.start_soon(self._pump_stderr, child)
                try:
                    yield from_server, to_server
                finally:
                    # Shielded: a cancelled owner must still stop and reap its child.
                    with anyio.CancelScope(shield=True):
                        await _stop_child(child, kill=run.kill)
                    pumps.cancel_scope.cancel()
        finally:
            run.returncode = child.returncode
            with anyio.CancelScope(shield=True):
                await child.release()
            for stream in (to_session, from_server, to_server, from_session):
                stream.close()

    async def _pump_stdout(
        self,
        child: Child,
        sink: MemoryObjectSendStream[SessionMessage | Exception],
        run: _Run,
    ) -> None:
        """Lines from the child to the session; EOF means the server is gone."""
        delivering = True
        try:
            async with sink:
                while True:
                    try:
                        line = await child.stdout.readline()
                    except ValueError:  # over MAX_LINE_BYTES: the reader skipped past it
                        item: SessionMessage | Exception = UnparsableLine(MAX_LINE_BYTES)
                    else:
                        if not line:
                            return
                        if not line.strip():
                            continue
                        item = _parse(line)
                    if not delivering:
                        continue
                    try:
                        await sink.send(item)
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                        delivering = False  # session gone: keep draining so the child can exit
        except (ConnectionError, OSError):
            return
        finally:
            run.stop.set()

    async def _pump_stdin(
        self,
        child: Child,
        source: MemoryObjectReceiveStream[SessionMessage],
        run: _Run,
    ) -> None:
        """Messages from the session to the child; a broken pipe means the server is gone."""
        try:
            async with source:
                async for message in source:
                    data = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                    child.stdin.write(data.encode() + b"\n")
                    await child.stdin.drain()
        except (ConnectionError, OSError, anyio.ClosedResourceError, anyio.BrokenResourceError):
            run.stop.set()

    async def _pump_stderr(self, child: Child) -> None:
        while chunk := await child.stderr.read(4096):
            self.stderr.feed(chunk)


def _parse(line: bytes) -> SessionMessage | Exception:
    """A JSON-RPC message, or the noise marker the session hands to its message handler."""
    try:
        return SessionMessage(jsonrpc_message_adapter.validate_json(line, by_name=False))
    except ValueError:
        return UnparsableLine(len(line))


async def _stop_child(child: Child, *, kill: bool) -> None:
    """Close stdin, wait, SIGTERM, SIGKILL: each step only if the child is still there."""
    if kill:
        _signal_group(child.pid, signal.SIGKILL)
    else:
        child.stdin.close()
        if not await _exited(child, STOP_GRACE):
            _signal_group(child.pid, signal.SIGTERM)
            if not await _exited(child, TERM_GRACE):
                _signal_group(child.pid, signal.SIGKILL)
    await _exited(child, REAP_TIMEOUT)


async def _exited(child: Child, within: float) -> bool:
    with anyio.move_on_after(within):
        await child.exited.wait()
    return child.exited.is_set()


def _signal_group(pid: int, signum: signal.Signals) -> None:
    """Signal the child's whole process group (it leads its own session)."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)
