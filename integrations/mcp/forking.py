"""`ForkedServerHandle`: a Python server forked from a process that imported the SDK once.

A project server's start is mostly the MCP SDK's import (about a second of CPU each); six
Python servers on two cores queued behind six copies of it. The fork server
(`integrations/servers/_forkserver.py`) imports it once and forks each server as a child of
its own: its own pid and process group, its own stdin, stdout and stderr pipes, created here
and handed over with the request. Supervision is unchanged: the handle reads and writes the
pipes, signals the pid's group to stop or kill it, and learns of its exit from the fork
server, which reaps it and reports the exit code.

Lifecycle. One fork server per event loop, started by the first spawn and stopped when its
last child has exited and been released, so closing every handle leaves no process behind.
If the fork server dies, its children die with it (the kernel kills them, see its module);
their exits are then observed through pidfds, every handle sees its server gone and restarts
it through a fresh fork server. LIMIT: exit codes of children that outlive a killed fork
server are unknown (reported as None); only the fork server, their parent, could reap them.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import os
import signal
import socket
import sys
import weakref
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from mcp.client.stdio import get_default_environment

from core.errors import ServerUnavailable
from integrations.mcp.handle import DEFAULT_START_TIMEOUT
from integrations.mcp.stdio import MAX_LINE_BYTES, Child, StderrTail, StdioServerHandle

REPO_ROOT = Path(__file__).resolve().parents[2]
FORK_SERVER_MODULE = "integrations.servers._forkserver"
#: Bounds one spawn request: booting the fork server (the SDK import, under load too) and
#: one fork. The handshake after it has the handle's own start timeout.
SPAWN_TIMEOUT = 30.0
#: Bounds the fork server's own exit once its control socket is closed.
SHUTDOWN_GRACE = 5.0
#: Largest message the fork server sends (a pid or an exit code: far below this).
MAX_REPLY = 64 * 1024


class ForkedChild(Child):
    """A server process forked by the fork server; it reports the exit, a pidfd backs it up."""

    def __init__(self, server: ForkServer) -> None:
        self._server = server
        self._code: int | None = None
        self._pidfd: int | None = None
        self._transports: list[asyncio.BaseTransport] = []
        self.pid = 0
        self.spawned: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.exited = asyncio.Event()
        self.abandoned = False  # its spawner gave up waiting: kill it on arrival
        self._released = False
        self.stdout = asyncio.StreamReader(limit=MAX_LINE_BYTES)
        self.stderr = asyncio.StreamReader(limit=MAX_LINE_BYTES)

    @property
    def returncode(self) -> int | None:
        return self._code

    async def _attach(self, stdin_w: int, stdout_r: int, stderr_r: int) -> None:
        """Our ends of the three pipes as asyncio streams; the descriptors are ours to close."""
        loop = asyncio.get_running_loop()
        stdin = os.fdopen(stdin_w, "wb", buffering=0)
        outputs = [os.fdopen(fd, "rb", buffering=0) for fd in (stdout_r, stderr_r)]
        try:
            for reader, pipe in zip((self.stdout, self.stderr), outputs, strict=True):
                transport, _ = await loop.connect_read_pipe(
                    functools.partial(asyncio.StreamReaderProtocol, reader), pipe
                )
                self._transports.append(transport)
            writer, protocol = await loop.connect_write_pipe(
                lambda: asyncio.streams.FlowControlMixin(loop), stdin
            )
        except BaseException:
            for pipe in (stdin, *outputs):
                pipe.close()  # idempotent: a transport that owns one closes it again harmlessly
            raise
        self._transports.append(writer)
        self.stdin = asyncio.StreamWriter(writer, protocol, None, loop)

    def _arrived(self, pid: int) -> None:
        self.pid = pid
        with contextlib.suppress(OSError):  # already gone: its exit report follows
            self._pidfd = os.pidfd_open(pid)
        if self.abandoned:
            _kill_group(pid)
        self.spawned.set_result(None)

    def _gone(self, code: int | None) -> None:
        if not self.exited.is_set():
            self._code = code
            self.exited.set()

    def _watch_pidfd(self, on_gone: Callable[[ForkedChild], None]) -> None:
        """The fork server is gone: the kernel says when this process is."""
        pidfd = self._pidfd
        if pidfd is None:
            self._gone(None)
            on_gone(self)
            return
        loop = asyncio.get_running_loop()

        def readable() -> None:
            loop.remove_reader(pidfd)
            self._gone(None)
            on_gone(self)

        loop.add_reader(pidfd, readable)

    async def release(self) -> None:
        if self._released:
            return
        self._released = True
        for transport in self._transports:
            transport.close()
        if self._pidfd is not None:
            with contextlib.suppress(ValueError, RuntimeError):
                asyncio.get_running_loop().remove_reader(self._pidfd)
            os.close(self._pidfd)
            self._pidfd = None
        await self._server._release(self)


class ForkServer:
    """The client's side of one fork-server process: spawn requests, exits, its own life."""

    def __init__(self) -> None:
        self.stderr = StderrTail()
        self._process: asyncio.subprocess.Process | None = None
        self._control: socket.socket | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._lock = asyncio.Lock()
        self._users = 0  # children not yet released, and spawns in flight
        self._ids = itertools.count(1)
        self._waiting: dict[int, ForkedChild] = {}
        self._children: dict[int, ForkedChild] = {}
        self._background: set[asyncio.Task[None]] = set()

    @property
    def pid(self) -> int | None:
        """The fork server's own pid while it runs."""
        return self._process.pid if self._control is not None and self._process else None

    async def spawn(
        self,
        module: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: Path,
        *,
        timeout: float,  # noqa: ASYNC109 - an abandoned spawn needs cleaning up, not only cancelling
    ) -> ForkedChild:
        """A new child running `python -m module argv...`; ServerUnavailable if none came."""
        async with self._lock:
            if self._control is None:
                await self._boot()
            self._users += 1
        child = ForkedChild(self)
        try:
            await self._request(child, module, argv, env, cwd)
        except BaseException:
            await child.release()  # nothing was forked
            raise
        try:
            async with asyncio.timeout(timeout):
                await asyncio.shield(child.spawned)
        except BaseException:
            self._abandon(child)
            raise
        return child

    def _abandon(self, child: ForkedChild) -> None:
        """Its spawner gave up: kill it when it arrives, release it once it is gone."""
        child.abandoned = True
        if child.spawned.done() and not child.spawned.exception():
            _kill_group(child.pid)
        self._settle(child)

    def _settle(self, child: ForkedChild) -> None:
        """Release an abandoned child once nothing more will come of it."""
        failed = child.spawned.done() and child.spawned.exception() is not None
        if child.abandoned and (child.exited.is_set() or failed):
            task = asyncio.create_task(child.release(), name="mcp-forkserver-abandoned")
            self._background.add(task)
            task.add_done_callback(self._background.discard)

    async def _boot(self) -> None:
        await self._shutdown()  # a fork server that died: reap it and forget its tasks
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        try:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                FORK_SERVER_MODULE,
                str(theirs.fileno()),
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE,
                env=get_default_environment() | {"PYTHONPATH": str(REPO_ROOT)},
                cwd=REPO_ROOT,
                start_new_session=True,  # a terminal's Ctrl-C reaches the bot, not its servers
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        self._control = ours
        self.stderr = StderrTail()
        self._tasks = [
            asyncio.create_task(self._read(ours), name="mcp-forkserver-read"),
            asyncio.create_task(self._drain_stderr(self._process), name="mcp-forkserver-stderr"),
        ]

    async def _request(
        self,
        child: ForkedChild,
        module: str,
        argv: Sequence[str],
        env: Mapping[str, str],
        cwd: Path,
    ) -> None:
        control = self._control
        if control is None:
            raise ServerUnavailable(f"fork server gone{self._diagnostics()}", server=module)
        request_id = next(self._ids)
        body = {"id": request_id, "module": module, "argv": list(argv), "env": dict(env)}
        body["cwd"] = str(cwd)
        pipes = [os.pipe() for _ in range(3)]  # stdin, stdout, stderr
        theirs = [pipes[0][0], pipes[1][1], pipes[2][1]]
        try:
            await child._attach(pipes[0][1], pipes[1][0], pipes[2][0])
            self._waiting[request_id] = child
            try:
                socket.send_fds(control, [json.dumps(body).encode()], theirs)
            except OSError as exc:
                del self._waiting[request_id]
                reason = f"fork server unreachable: {exc}{self._diagnostics()}"
                raise ServerUnavailable(reason, server=module) from exc
        finally:
            for fd in theirs:
                os.close(fd)

    async def _read(self, control: socket.socket) -> None:
        """Replies and exit reports, in order, until the fork server's end closes."""
        loop = asyncio.get_running_loop()
        try:
            while data := await loop.sock_recv(control, MAX_REPLY):
                self._dispatch(json.loads(data))
        except (OSError, ValueError):
            pass
        finally:
            self._lost(control)

    def _dispatch(self, message: dict[str, object]) -> None:
        if "exit" in message:
            pid, code = message["exit"], message.get("code")
            child = self._children.pop(pid, None) if isinstance(pid, int) else None
            if child is not None:
                child._gone(code if isinstance(code, int) else None)
                self._settle(child)
            return
        request_id = message.get("id")
        child = self._waiting.pop(request_id, None) if isinstance(request_id, int) else None
        if child is None:
            return
        pid = message.get("pid")
        if isinstance(pid, int):
            self._children[pid] = child
            child._arrived(pid)
        else:
            reason = f"fork server refused: {message.get('error')}"
            child.spawned.set_exception(ServerUnavailable(reason, server="forkserver"))
            self._settle(child)

    def _lost(self, control: socket.socket) -> None:
        """The fork server's end closed: fail what waits, watch the orphans through pidfds."""
        if self._control is control:
            self._control = None
        control.close()
        reason = f"fork server exited{self._diagnostics()}"
        for child in self._waiting.values():
            if not child.spawned.done():
                child.spawned.set_exception(ServerUnavailable(reason, server="forkserver"))
            self._settle(child)
        self._waiting.clear()
        for child in self._children.values():
            child._watch_pidfd(on_gone=self._settle)
        self._children.clear()

    async def _drain_stderr(self, process: asyncio.subprocess.Process) -> None:
        assert process.stderr is not None
        while chunk := await process.stderr.read(4096):
            self.stderr.feed(chunk)

    def _diagnostics(self) -> str:
        tail = self.stderr.text()
        return f"; stderr: {tail}" if tail else ""

    async def _release(self, child: ForkedChild) -> None:
        """One user fewer; the last one out stops the fork server and reaps it."""
        async with self._lock:
            self._users -= 1
            if self._users == 0:
                await self._shutdown()

    async def _shutdown(self) -> None:
        """Close the control socket (the fork server reads EOF and exits) and reap it."""
        process, tasks = self._process, self._tasks
        self._process, self._tasks = None, []
        for task in tasks[:1]:
            task.cancel()  # the reader: its way out closes the control socket
        await asyncio.gather(*tasks[:1], return_exceptions=True)
        if process is not None:
            try:
                await asyncio.wait_for(process.wait(), SHUTDOWN_GRACE)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        await asyncio.gather(*tasks[1:], return_exceptions=True)  # stderr: EOF by now


_per_loop: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ForkServer] = (
    weakref.WeakKeyDictionary()
)


def fork_server() -> ForkServer:
    """The running event loop's fork server (asyncio pipes and tasks belong to one loop)."""
    loop = asyncio.get_running_loop()
    server = _per_loop.get(loop)
    if server is None:
        server = _per_loop[loop] = ForkServer()
    return server


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


class ForkedServerHandle(StdioServerHandle):
    """`python -m module args...` forked from the fork server instead of spawned cold."""

    def __init__(
        self,
        name: str,
        module: str,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
        cwd: str | Path | None = None,
        *,
        start_timeout: float = DEFAULT_START_TIMEOUT,
    ) -> None:
        # command/args keep the equivalent command line, for whoever reads them.
        super().__init__(
            name, sys.executable, ("-m", module, *args), env, cwd, start_timeout=start_timeout
        )
        self.module = module
        self.module_args = tuple(args)

    async def _start_child(self) -> Child:
        cwd = self.cwd if self.cwd is not None else Path.cwd()
        try:
            return await fork_server().spawn(
                self.module, self.module_args, self._env, cwd, timeout=SPAWN_TIMEOUT
            )
        except TimeoutError as exc:
            reason = f"fork server did not answer within {SPAWN_TIMEOUT:g} s"
            raise ServerUnavailable(reason, server=self.name) from exc
