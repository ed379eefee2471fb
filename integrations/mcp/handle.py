"""`ServerHandle`: one supervised MCP connection, whatever carries it.

Each spawn of the server is a `_Run` driven by one owner task (`_own`). The owner enters the
transport and the `ClientSession` with `async with`, initialises, lists the tools, signals
`ready` and parks on `stop`; whatever sets `stop` (close, a broken stream, a hung server)
makes the owner leave its blocks in the same task that entered them, which stops the server
and, for a child process, reaps it. Callers never touch the owner: they wait for `ready`,
use the session, and on failure mark the run stopped. The next call after an unexpected stop
spawns a fresh run once the backoff has passed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Self, TypeVar

import anyio
from mcp.client._transport import TransportStreams  # the SDK's transports yield this pair
from mcp.client.session import ClientRequestContext, ClientSession, IncomingMessage
from mcp_types import Implementation, ListRootsResult, PaginatedRequestParams

from core.errors import IntegrationError, ServerUnavailable, ToolFailed
from integrations.mcp.errors import UnparsableLine, translate
from integrations.mcp.results import decode_result, result_size

log = logging.getLogger("taskbot.mcp")

#: First restart delay after an unexpected stop; doubles with each consecutive failure.
RESTART_DELAY_FIRST = 0.5
#: Ceiling of the restart delay: a dead server is still retried twice a minute.
RESTART_DELAY_MAX = 30.0
#: Consecutive timed-out calls that mean the server hung: it is killed and restarted.
HANG_TIMEOUTS = 2
#: Bounds one start: spawn or connect, `initialize` and `tools/list`.
DEFAULT_START_TIMEOUT = 30.0

CLIENT_INFO = Implementation(name="taskbot", version="0.1.0")

T = TypeVar("T")


@dataclass(eq=False)
class _Run:
    """One spawn (or connection) of the server and what callers need to know about it."""

    number: int
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    error: IntegrationError | None = None  # why it never became ready
    session: ClientSession | None = None
    pid: int | None = None
    returncode: int | None = None
    failure: str | None = None  # kind of error that ended the run, if one did
    kill: bool = False  # stop without a grace period: the server is hung
    expected: bool = False  # stopped on purpose by close(), not a failure
    task: asyncio.Task[None] | None = None

    @property
    def alive(self) -> bool:
        return not self.stop.is_set()


async def _no_roots(context: ClientRequestContext) -> ListRootsResult:
    """Advertise roots but offer none: servers then keep the directories they were given."""
    return ListRootsResult(roots=[])


class ServerHandle(ABC):
    """A supervised MCP server: start, call tools from any task, restart on failure, close."""

    def __init__(self, name: str, *, start_timeout: float = DEFAULT_START_TIMEOUT) -> None:
        self.name = name
        self.start_timeout = start_timeout
        self.tools: frozenset[str] = frozenset()
        self.restarts = 0
        self.started_at: datetime | None = None
        self.noise_lines = 0  # stdout lines that were not JSON-RPC, survived
        self._run: _Run | None = None
        self._spawned = 0
        self._lock = asyncio.Lock()
        self._closed = False
        self._failures = 0  # consecutive unexpected stops or failed starts; drives the backoff
        self._down_at = 0.0
        self._timeouts = 0  # consecutive timed-out calls; HANG_TIMEOUTS means hung

    # -- what a transport supplies -------------------------------------------------------

    @abstractmethod
    def _connect(self, run: _Run) -> AbstractAsyncContextManager[TransportStreams]:
        """Streams to the server for one run; leaving the block must stop what it started."""

    def _diagnostics(self) -> str:
        """Extra words for a start failure (a child's stderr tail); empty by default."""
        return ""

    # -- public surface -------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The live child's process id, None when down or not a child process."""
        run = self._run
        return run.pid if run is not None and run.alive else None

    @property
    def is_up(self) -> bool:
        run = self._run
        return run is not None and run.alive and run.session is not None

    async def start(self) -> None:
        """Spawn and initialise now; ServerUnavailable with the server's last words if not."""
        self._closed = False
        await self._session()

    async def call(
        self,
        tool: str,
        arguments: Mapping[str, Any] | None = None,
        *,
        timeout: float,  # noqa: ASYNC109 - the handle must see its own timeouts to detect hangs
    ) -> object:
        """Call a tool; returns its structured content, decoded text or text."""
        args = dict(arguments or {})

        async def invoke(session: ClientSession) -> object:
            result = await session.call_tool(tool, args)
            return decode_result(result, server=self.name, tool=tool)

        return await self._invoke(tool, invoke, timeout)

    async def ping(self, timeout: float) -> None:  # noqa: ASYNC109 - same as call()
        """Round trip to the server; restarts it first if it is down."""

        async def invoke(session: ClientSession) -> None:
            await session.send_ping()

        await self._invoke("ping", invoke, timeout)

    async def close(self) -> None:
        """Stop the server and wait until it is gone; safe to call twice."""
        self._closed = True
        run = self._run
        if run is None:
            return
        run.expected = True
        run.stop.set()
        if run.task is not None:
            await asyncio.wait({run.task})

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        state = "up" if self.is_up else "down"
        return f"<{type(self).__name__} {self.name} {state} pid={self.pid}>"

    # -- calls ---------------------------------------------------------------------------

    async def _invoke(
        self,
        label: str,
        operation: Callable[[ClientSession], Awaitable[T]],
        seconds: float,
    ) -> T:
        """The choke point every request passes: timeout, translation, supervision, logs."""
        began = time.monotonic()
        run: _Run | None = None
        try:
            with anyio.fail_after(seconds):
                run, session = await self._session()
                value = await operation(session)
        except Exception as exc:
            error = translate(exc, server=self.name, tool=label, timeout=seconds)
            self._note_failure(run, error, hung=run is not None and isinstance(exc, TimeoutError))
            log.warning(
                "mcp.tool.failed",
                extra={
                    "server": self.name,
                    "tool": label,
                    "error_kind": type(error).__name__,
                    "error": str(error),
                    "duration_ms": _ms_since(began),
                },
            )
            if error is exc:
                raise
            raise error from exc
        self._timeouts = 0
        self._failures = 0
        log.debug(
            "mcp.tool.called",
            extra={
                "server": self.name,
                "tool": label,
                "duration_ms": _ms_since(began),
                "result_size": result_size(value),
            },
        )
        return value

    def _note_failure(self, run: _Run | None, error: IntegrationError, *, hung: bool) -> None:
        """Supervision after a failed call: count hangs, drop broken connections."""
        if isinstance(error, ToolFailed):
            self._timeouts = 0  # the server answered, so it is not hung
            return
        if run is None or not run.alive:
            return
        if not hung:
            run.stop.set()  # the connection broke; the owner tears it down
            return
        self._timeouts += 1
        if self._timeouts >= HANG_TIMEOUTS:
            log.warning("mcp.server.hung", extra={"server": self.name, "pid": run.pid})
            self._timeouts = 0
            run.kill = True
            run.stop.set()

    async def _session(self) -> tuple[_Run, ClientSession]:
        """The live run and its session, spawning or restarting the server when needed."""
        if self._closed:
            raise ServerUnavailable("handle is closed", server=self.name)
        run = self._run
        if run is None or not run.alive:
            run = await self._respawn()
        await run.ready.wait()
        if run.error is not None:
            raise ServerUnavailable(str(run.error.args[0]), server=self.name) from run.error
        session = run.session
        if session is None or not run.alive:
            raise ServerUnavailable("server went down", server=self.name)
        return run, session

    # -- supervision ---------------------------------------------------------------------

    async def _respawn(self) -> _Run:
        """Start a new run after the old one is fully gone, honouring the backoff."""
        async with self._lock:
            previous = self._run
            if previous is not None and previous.alive:
                return previous  # another caller restarted it while we waited
            if previous is not None:
                if previous.task is not None:
                    await asyncio.wait({previous.task})  # old child reaped first
                if not previous.expected:
                    delay = self._restart_delay()
                    log.info(
                        "mcp.server.restarting",
                        extra={"server": self.name, "attempt": self._failures, "delay_s": delay},
                    )
                    await asyncio.sleep(delay)
                    self.restarts += 1
            if self._closed:
                raise ServerUnavailable("handle is closed", server=self.name)
            return self._spawn()

    def _restart_delay(self) -> float:
        if self._failures == 0:
            return 0.0
        backoff = min(RESTART_DELAY_FIRST * 2.0 ** (self._failures - 1), RESTART_DELAY_MAX)
        return max(0.0, round(self._down_at + backoff - time.monotonic(), 3))

    def _spawn(self) -> _Run:
        self._spawned += 1
        run = _Run(number=self._spawned)
        self._run = run
        run.task = asyncio.create_task(self._own(run), name=f"mcp-{self.name}-{run.number}")
        return run

    async def _own(self, run: _Run) -> None:
        """Owner task of one run: every context it enters, it also leaves."""
        began = time.monotonic()
        try:
            async with (
                self._connect(run) as (read_stream, write_stream),
                ClientSession(
                    read_stream,
                    write_stream,
                    list_roots_callback=_no_roots,
                    message_handler=self._on_message,
                    client_info=CLIENT_INFO,
                ) as session,
            ):
                # Phase 1: handshake and tool list, bounded so a mute server cannot hang start(),
                # and abandoned at once if close() comes first.
                if not await self._handshake(run, session):
                    return

                # Phase 2: serve callers until someone or something asks to stop.
                run.session = session
                self.started_at = datetime.now(UTC)
                log.info(
                    "mcp.server.started",
                    extra={"server": self.name, "pid": run.pid, "duration_ms": _ms_since(began)},
                )
                run.ready.set()
                await run.stop.wait()
        except asyncio.CancelledError:
            run.expected = True  # the event loop is shutting down: a stop, not a crash
            raise
        except Exception as exc:
            run.failure = type(translate(exc, server=self.name, tool=None)).__name__
            if not run.ready.is_set():
                run.error = self._start_error(exc)
        finally:
            # Phase 3: the transport is closed and the child reaped; tell everyone.
            run.session = None
            run.stop.set()
            if not run.ready.is_set() and run.error is None:
                run.error = ServerUnavailable("stopped while starting", server=self.name)
            run.ready.set()
            self._on_exit(run)

    async def _handshake(self, run: _Run, session: ClientSession) -> bool:
        """Initialise and list tools; False when the run was stopped meanwhile."""
        async with anyio.create_task_group() as watch:

            async def cancel_on_stop() -> None:
                await run.stop.wait()
                watch.cancel_scope.cancel()

            watch.start_soon(cancel_on_stop)
            with anyio.fail_after(self.start_timeout):
                await session.initialize()
                self.tools = await _tool_names(session)
            watch.cancel_scope.cancel()
        return not run.stop.is_set()

    def _start_error(self, exc: Exception) -> ServerUnavailable:
        reason = translate(exc, server=self.name, tool=None, timeout=self.start_timeout)
        message = f"failed to start: {reason.args[0]}{self._diagnostics()}"
        error = ServerUnavailable(message, server=self.name)
        error.__cause__ = exc
        return error

    def _on_exit(self, run: _Run) -> None:
        if not run.expected:
            self._failures += 1
            self._down_at = time.monotonic()
        log.log(
            logging.INFO if run.expected else logging.WARNING,
            "mcp.server.exited",
            extra={
                "server": self.name,
                "pid": run.pid,
                "returncode": run.returncode,
                "error_kind": run.failure,
            },
        )

    async def _on_message(self, message: IncomingMessage) -> None:
        """Transport faults arrive here as values; a garbage line is counted and survived."""
        if isinstance(message, UnparsableLine):
            self.noise_lines += 1
            if self.noise_lines & (self.noise_lines - 1) == 0:  # 1, 2, 4, 8...: bounded logs
                log.warning(
                    "mcp.server.noise",
                    extra={"server": self.name, "size": message.size, "count": self.noise_lines},
                )
        elif isinstance(message, Exception):
            log.warning(
                "mcp.server.transport_error",
                extra={"server": self.name, "error_kind": type(message).__name__},
            )


async def _tool_names(session: ClientSession) -> frozenset[str]:
    names: set[str] = set()
    listing = await session.list_tools()
    names.update(tool.name for tool in listing.tools)
    while listing.next_cursor is not None:
        page = PaginatedRequestParams(cursor=listing.next_cursor)
        listing = await session.list_tools(params=page)
        names.update(tool.name for tool in listing.tools)
    return frozenset(names)


def _ms_since(began: float) -> int:
    return round((time.monotonic() - began) * 1000)
