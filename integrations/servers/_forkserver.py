"""Fork server: import the MCP SDK once, then fork each Python server as its own process.

Every project server spends about a second of CPU importing the SDK (pydantic models for the
whole protocol, the HTTP stack it re-exports); ten servers on two cores made start-up wait
on the same import six times. This process does it once and forks a child per request.

Contract, as the client (`integrations/mcp/forking.py`) relies on it:
- It runs as `python -m integrations.servers._forkserver FD`, FD being one end of an AF_UNIX
  SOCK_SEQPACKET pair: one message per request and per reply, never split or merged.
- A request is a JSON object {id, module, argv, env, cwd} with three descriptors attached:
  the child's stdin, stdout and stderr. The reply is {id, pid} or {id, error}. When a child
  is reaped the client gets {exit: pid, code} (negative code: killed by that signal).
- A child is what `python -m module argv...` would be in `cwd` with exactly `env`: its own
  process group (so the client can signal it and what it starts), no descriptor but 0, 1
  and 2, `module` run as `__main__`. It never returns into this loop.
- The fork happens here, single-threaded and outside any event loop; nothing imported before
  the fork may start a thread (checked: a request is refused rather than forked unsafely).
- Children die with this process (PR_SET_PDEATHSIG): a killed fork server cannot leave
  servers the client no longer hears about. When the client's end closes, no new child is
  made; the process exits once its children have: they follow their closed stdin, and one
  that has not after ORPHAN_GRACE gets SIGTERM, then SIGKILL.
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import json
import os
import runpy
import selectors
import signal
import socket
import sys
import threading
import time
import traceback
from typing import Any

# What every project server imports first; a child pays only for its own module.
import mcp.server.mcpserver  # noqa: F401

import integrations.servers._common  # noqa: F401

#: Largest request accepted (the JSON with the child's environment).
MAX_REQUEST = 256 * 1024
#: Time children get to exit on their own once the client has gone (bot killed, say).
ORPHAN_GRACE = 5.0
#: Time between SIGTERM and SIGKILL for a child that outlives its client and the grace.
TERM_GRACE = 2.0
_PR_SET_NAME = 15
_PR_SET_PDEATHSIG = 1


def main() -> None:
    control = socket.socket(fileno=int(sys.argv[1]))
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w)
    signal.signal(signal.SIGCHLD, lambda *_: None)  # a handler, so the wakeup fd hears it
    gc.freeze()  # imported objects stay out of the children's collections: fewer copied pages
    _serve(control, wake_r)


def _serve(control: socket.socket, wake_r: int) -> None:
    """Fork on request and report exits until the client is gone and every child with it."""
    children: set[int] = set()
    listening = True
    deadline = 0.0  # once the client is gone: when the next signal goes to the children
    escalation = [signal.SIGTERM, signal.SIGKILL]
    with selectors.DefaultSelector() as selector:
        selector.register(control, selectors.EVENT_READ)
        selector.register(wake_r, selectors.EVENT_READ)
        while listening or children:
            timeout = None if listening else max(0.0, deadline - time.monotonic())
            for key, _ in selector.select(timeout):
                if key.fileobj == wake_r:
                    os.read(wake_r, 4096)
                    _reap(control, children, report=listening)
                    continue
                data, fds, _flags, _addr = socket.recv_fds(control, MAX_REQUEST, 3)
                if data:
                    _fork(data, fds, control, children, cleanup=(selector, wake_r))
                    continue
                listening = False
                selector.unregister(control)
                deadline = time.monotonic() + ORPHAN_GRACE
            if not listening and children and escalation and time.monotonic() >= deadline:
                # The client died (a closed stdin is their cue) and some child ignores it.
                signum = escalation.pop(0)
                for pid in children:
                    with contextlib.suppress(OSError):
                        os.killpg(pid, signum)
                deadline = time.monotonic() + TERM_GRACE


def _reap(control: socket.socket, children: set[int], *, report: bool) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            children.clear()
            return
        if pid == 0:
            return
        children.discard(pid)
        if report:
            _send(control, {"exit": pid, "code": os.waitstatus_to_exitcode(status)})


def _fork(
    data: bytes,
    fds: list[int],
    control: socket.socket,
    children: set[int],
    *,
    cleanup: tuple[selectors.BaseSelector, int],
) -> None:
    """Fork one child for the request and tell the client its pid (or why not)."""
    request: dict[str, Any] = {}
    try:
        request = json.loads(data)
        if len(fds) != 3:
            raise ValueError(f"expected 3 descriptors, got {len(fds)}")
        if threading.active_count() != 1:
            raise RuntimeError("the fork server has threads; forking now is unsafe")
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
    except (ValueError, RuntimeError, OSError) as exc:
        for fd in fds:
            os.close(fd)
        _send(control, {"id": request.get("id"), "error": f"{type(exc).__name__}: {exc}"})
        return
    if pid == 0:
        code = 1
        try:
            code = _become(request, fds, control, cleanup)
        finally:
            os._exit(code)  # never back into the loop, whatever happened
    with contextlib.suppress(OSError):
        os.setpgid(pid, pid)  # also done by the child: whichever runs first wins the race
    for fd in fds:
        os.close(fd)
    children.add(pid)
    _send(control, {"id": request["id"], "pid": pid})


def _become(
    request: dict[str, Any],
    fds: list[int],
    control: socket.socket,
    cleanup: tuple[selectors.BaseSelector, int],
) -> int:
    """In the child: take the descriptors, environment and directory, run the module."""
    parent = os.getppid()
    signal.set_wakeup_fd(-1)
    signal.signal(signal.SIGCHLD, signal.SIG_DFL)
    os.setpgid(0, 0)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    # LIMIT: the command line (ps -f, /proc/PID/cmdline) stays the fork server's; only the
    # short name (ps, top, psutil's name()) says which server this is. Rewriting argv needs
    # a C extension such as setproctitle.
    libc.prctl(_PR_SET_NAME, request["module"].rsplit(".", 1)[-1].encode()[:15])
    if os.getppid() != parent:
        return 1  # the fork server died before the line above: so must this child
    selector, wake_r = cleanup
    selector.close()
    control.close()
    os.close(wake_r)
    for target, fd in enumerate(fds):
        os.dup2(fd, target)
    # Whatever else is open (the wakeup pipe's other end, the other children's pipes were
    # closed already) must go too: a stray copy of a pipe keeps a server from seeing EOF.
    os.closerange(3, os.sysconf("SC_OPEN_MAX"))
    os.chdir(request["cwd"])
    os.environ.clear()
    os.environ.update(request["env"])
    sys.path[0] = request["cwd"]  # as `python -m` there would have it (here: our own cwd)
    sys.argv = [request["module"], *request["argv"]]
    try:
        runpy.run_module(request["module"], run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        return _exit_code(exc.code)
    except BaseException:
        traceback.print_exc()
        return 1
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        with contextlib.suppress(Exception):
            sys.stderr.flush()
    return 0


def _exit_code(code: object) -> int:
    """What the interpreter would exit with for `SystemExit(code)`."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    sys.stderr.write(f"{code}\n")
    return 1


def _send(control: socket.socket, message: dict[str, Any]) -> None:
    with contextlib.suppress(OSError):  # the client is gone: nobody left to tell
        control.send(json.dumps(message).encode())


if __name__ == "__main__":
    main()
