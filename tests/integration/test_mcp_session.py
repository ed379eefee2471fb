"""The MCP client layer against a real misbehaving server over real stdio (and HTTP)."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from core.errors import ServerUnavailable, ToolFailed
from core.settings import ServerConfig
from integrations.mcp import StdioServerHandle, make_handle
from integrations.mcp.forking import ForkedServerHandle, fork_server
from integrations.mcp.launch import Launch

pytestmark = pytest.mark.timeout(60)

FixtureHandle = Callable[..., StdioServerHandle]
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def process_gone(pid: int) -> bool:
    """True once the pid is neither running nor a zombie waiting to be reaped."""
    return not Path(f"/proc/{pid}").exists()


def _events(caplog: pytest.LogCaptureFixture, name: str) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "taskbot.mcp" and r.getMessage() == name]


async def _wait_gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    # Nothing signals another process's exit to us, so /proc is polled.
    while not process_gone(pid) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.02)
    return process_gone(pid)


async def test_a_started_server_lists_its_tools_and_answers_a_call(
    fixture_server: StdioServerHandle,
) -> None:
    assert {"echo", "sleep", "crash", "garbage", "error"} <= fixture_server.tools
    assert fixture_server.pid is not None and not process_gone(fixture_server.pid)
    assert fixture_server.started_at is not None

    assert await fixture_server.call("echo", {"text": "hi"}, timeout=5) == {"text": "hi"}


async def test_a_list_result_arrives_unwrapped(fixture_server: StdioServerHandle) -> None:
    assert await fixture_server.call("echo_list", {"items": ["a", "b"]}, timeout=5) == ["a", "b"]


async def test_a_call_that_outlives_its_timeout_is_unavailable_at_about_the_timeout(
    fixture_server: StdioServerHandle,
) -> None:
    began = time.monotonic()
    with pytest.raises(ServerUnavailable, match=r"timed out after 0\.5s") as caught:
        await fixture_server.call("sleep", {"seconds": 10}, timeout=0.5)
    elapsed = time.monotonic() - began

    assert 0.45 <= elapsed < 1.5
    assert (caught.value.server, caught.value.tool) == ("fixture", "sleep")
    assert caught.value.retryable
    # One timeout is not a hang: the same process keeps serving.
    assert fixture_server.restarts == 0
    assert await fixture_server.call("echo", {"text": "still here"}, timeout=5)


async def test_a_call_in_flight_when_the_server_crashes_fails_at_once(
    fixture_server: StdioServerHandle,
) -> None:
    began = time.monotonic()
    with pytest.raises(ServerUnavailable, match="connection closed"):
        await fixture_server.call("crash", {}, timeout=20)

    assert time.monotonic() - began < 2.0
    assert not fixture_server.is_up


async def test_tool_call_to_a_crashed_server_restarts_it_once(
    fixture_server: StdioServerHandle,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="taskbot.mcp")
    old_pid = fixture_server.pid
    assert old_pid is not None
    with pytest.raises(ServerUnavailable):
        await fixture_server.call("crash", {"code": 3}, timeout=20)

    assert await fixture_server.call("echo", {"text": "back"}, timeout=20) == {"text": "back"}

    assert fixture_server.restarts == 1
    assert fixture_server.pid not in (None, old_pid)
    assert process_gone(old_pid)
    exited = _events(caplog, "mcp.server.exited")
    assert [(r.pid, r.returncode) for r in exited] == [(old_pid, 3)]  # type: ignore[attr-defined]
    restarting = _events(caplog, "mcp.server.restarting")
    assert [r.attempt for r in restarting] == [1]  # type: ignore[attr-defined]


async def test_a_server_that_times_out_twice_in_a_row_is_killed_and_restarted(
    fixture_server: StdioServerHandle,
) -> None:
    hung_pid = fixture_server.pid
    assert hung_pid is not None
    for _ in range(2):
        with pytest.raises(ServerUnavailable, match="timed out"):
            await fixture_server.call("sleep", {"seconds": 30}, timeout=0.3)

    assert await _wait_gone(hung_pid, within=1.0), "the hung server was not killed at once"
    assert await fixture_server.call("echo", {"text": "fresh"}, timeout=20) == {"text": "fresh"}
    assert fixture_server.restarts == 1
    assert fixture_server.pid != hung_pid


async def test_garbage_on_stdout_is_survived_without_a_restart(
    fixture_server: StdioServerHandle,
) -> None:
    pid = fixture_server.pid

    assert await fixture_server.call("garbage", {"lines": 3}, timeout=5) == "after garbage"
    assert await fixture_server.call("echo", {"text": "ok"}, timeout=5) == {"text": "ok"}

    assert fixture_server.noise_lines >= 6
    assert (fixture_server.pid, fixture_server.restarts) == (pid, 0)


async def test_a_tool_error_is_tool_failed_and_is_not_retried(
    fixture_server: StdioServerHandle,
) -> None:
    with pytest.raises(ToolFailed, match="refused on purpose") as caught:
        await fixture_server.call("error", {}, timeout=5)

    assert (caught.value.server, caught.value.tool) == ("fixture", "error")
    assert not caught.value.retryable
    calls = await fixture_server.call("calls", {}, timeout=5)
    assert isinstance(calls, dict) and calls["error"] == 1
    assert fixture_server.restarts == 0


async def test_a_result_shaped_as_an_error_is_tool_failed(
    fixture_server: StdioServerHandle,
) -> None:
    with pytest.raises(ToolFailed, match="Task not found"):
        await fixture_server.call("error_dict", {}, timeout=5)


async def test_an_unknown_tool_is_tool_failed(fixture_server: StdioServerHandle) -> None:
    with pytest.raises(ToolFailed):
        await fixture_server.call("no_such_tool", {}, timeout=5)


async def test_roots_are_offered_as_an_empty_list(fixture_server: StdioServerHandle) -> None:
    assert await fixture_server.call("roots", {}, timeout=5) == []


async def test_concurrent_calls_share_one_live_session(fixture_server: StdioServerHandle) -> None:
    texts = [f"n{n}" for n in range(20)]
    replies = await asyncio.gather(
        *(fixture_server.call("echo", {"text": t}, timeout=10) for t in texts)
    )
    assert replies == [{"text": t} for t in texts]


@pytest.mark.usefixtures("no_leaked_children")
async def test_a_server_that_cannot_start_reports_its_stderr(
    fixture_handle: FixtureHandle,
) -> None:
    handle = fixture_handle(FIXTURE_FAIL_START="config missing: FIXTURE_DB")
    with pytest.raises(ServerUnavailable, match="config missing: FIXTURE_DB") as caught:
        await handle.start()
    await handle.close()

    assert "failed to start" in str(caught.value)
    assert caught.value.__cause__ is not None


@pytest.mark.usefixtures("no_leaked_children")
async def test_a_server_mute_at_start_fails_start_after_the_start_timeout(
    fixture_handle: FixtureHandle,
) -> None:
    handle = fixture_handle(FIXTURE_MUTE="1")
    handle.start_timeout = 0.5
    began = time.monotonic()
    with pytest.raises(ServerUnavailable, match=r"failed to start: timed out after 0\.5s"):
        await handle.start()
    await handle.close()

    assert time.monotonic() - began < 5.0


@pytest.mark.usefixtures("no_leaked_children")
async def test_close_during_a_start_stops_the_server_without_waiting_for_the_handshake(
    fixture_handle: FixtureHandle,
) -> None:
    handle = fixture_handle(FIXTURE_MUTE="1")
    starting = asyncio.create_task(handle.start())
    async with asyncio.timeout(30):  # a forked one exists once the fork server has booted
        while handle.pid is None:  # noqa: ASYNC110 - the pid appears with no event to wait on
            await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)
    pid = handle.pid
    began = time.monotonic()

    await handle.close()

    assert time.monotonic() - began < 5.0  # the grace period, not the 30 s start timeout
    with pytest.raises(ServerUnavailable, match="stopped while starting"):
        await starting
    assert pid is not None and process_gone(pid)


@pytest.mark.usefixtures("no_leaked_children")
async def test_a_missing_command_is_unavailable_and_restarts_back_off(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, logger="taskbot.mcp")
    handle = StdioServerHandle("ghost", "/nonexistent/mcp-ghost")
    with pytest.raises(ServerUnavailable, match="No such file"):
        await handle.start()
    for _ in range(2):
        with pytest.raises(ServerUnavailable, match="No such file"):
            await handle.call("anything", {}, timeout=5)
    await handle.close()

    delays = [r.delay_s for r in _events(caplog, "mcp.server.restarting")]  # type: ignore[attr-defined]
    assert delays == [pytest.approx(0.5, abs=0.1), pytest.approx(1.0, abs=0.1)]
    assert handle.restarts == 2


@pytest.mark.usefixtures("no_leaked_children")
async def test_close_leaves_no_child_and_can_be_repeated(fixture_handle: FixtureHandle) -> None:
    handle = fixture_handle()
    await handle.start()
    pid = handle.pid
    assert pid is not None

    await handle.close()
    await handle.close()

    assert process_gone(pid)
    assert handle.pid is None
    with pytest.raises(ServerUnavailable, match="closed"):
        await handle.call("echo", {"text": "late"}, timeout=5)


@pytest.mark.usefixtures("no_leaked_children")
async def test_a_handle_works_as_an_async_context_manager(fixture_handle: FixtureHandle) -> None:
    async with fixture_handle() as handle:
        pid = handle.pid
        assert await handle.call("echo", {"text": "x"}, timeout=5) == {"text": "x"}
        await handle.ping(5)
    assert pid is not None and process_gone(pid)


@pytest.mark.usefixtures("no_leaked_children")
async def test_a_server_started_before_another_is_still_seen_to_crash_and_to_close(
    fixture_handle: FixtureHandle,
    caplog: pytest.LogCaptureFixture,
) -> None:
    # The second is forked while the first runs: had it inherited a copy of the first's
    # pipes, the first's crash would show only as a timeout and a close only after SIGTERM.
    caplog.set_level(logging.INFO, logger="taskbot.mcp")
    first, second = fixture_handle("first"), fixture_handle("second")
    await first.start()
    await second.start()
    crashed_pid = first.pid

    with pytest.raises(ServerUnavailable) as crash:
        await first.call("crash", {"code": 3}, timeout=20)
    await second.close()
    await first.close()

    assert "timed out" not in str(crash.value)
    exited = {r.server: (r.pid, r.returncode) for r in _events(caplog, "mcp.server.exited")}  # type: ignore[attr-defined]
    assert exited == {"first": (crashed_pid, 3), "second": (exited["second"][0], 0)}


@pytest.mark.usefixtures("no_leaked_children")
async def test_killing_the_fork_server_takes_its_servers_down_and_calls_restart_them() -> None:
    first = ForkedServerHandle("first", "tests.faults.fixture_server", cwd=PROJECT_ROOT)
    second = ForkedServerHandle("second", "tests.faults.fixture_server", cwd=PROJECT_ROOT)
    await asyncio.gather(first.start(), second.start())
    old_pids = (first.pid, second.pid)
    server_pid = fork_server().pid
    assert server_pid is not None and None not in old_pids

    os.kill(server_pid, signal.SIGKILL)

    async with asyncio.timeout(10):  # both notice their server gone (pipes close, pidfds fire)
        while first.pid is not None or second.pid is not None:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
    for pid in old_pids:
        assert pid is not None and not _running(pid)
    for handle in (first, second):
        assert await handle.call("echo", {"text": "back"}, timeout=20) == {"text": "back"}
        assert handle.pid not in (None, *old_pids)
    assert fork_server().pid not in (None, server_pid)
    await asyncio.gather(first.close(), second.close())
    assert fork_server().pid is None  # the last server closed stopped the fork server too


# A bot that starts a forked server which never reads its stdin, then prints that pid.
_ORPHANING_BOT = """
import asyncio, sys
from integrations.mcp.forking import ForkedServerHandle

async def main() -> None:
    env = {"FIXTURE_MUTE": "1"}
    handle = ForkedServerHandle("mute", "tests.faults.fixture_server", env=env, cwd=sys.argv[1])
    starting = asyncio.create_task(handle.start())
    while handle.pid is None:
        await asyncio.sleep(0.02)
    print(handle.pid, flush=True)
    await starting

asyncio.run(main())
"""


async def test_a_killed_bot_leaves_no_forked_server_behind_even_one_deaf_to_its_stdin() -> None:
    bot = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _ORPHANING_BOT,
        str(PROJECT_ROOT),
        cwd=PROJECT_ROOT,
        stdout=asyncio.subprocess.PIPE,
    )
    assert bot.stdout is not None
    async with asyncio.timeout(30):
        mute_pid = int(await bot.stdout.readline())
    left = psutil.Process(bot.pid).children(recursive=True)  # the fork server and the mute one
    assert mute_pid in {p.pid for p in left}

    bot.kill()
    await bot.wait()

    async with asyncio.timeout(20):  # its grace, SIGTERM, then SIGKILL: ~7 s at most
        while any(_running(p.pid) for p in left):  # noqa: ASYNC110 - no event for a non-child
            await asyncio.sleep(0.1)


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's reaper may not be quick, or may be absent)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


async def test_logs_name_events_and_never_carry_arguments_or_results(
    caplog: pytest.LogCaptureFixture,
    fixture_handle: FixtureHandle,
    no_leaked_children: None,
) -> None:
    caplog.set_level(logging.DEBUG, logger="taskbot.mcp")
    secret = "s3cr3t-payload-4711"
    async with fixture_handle() as handle:
        assert await handle.call("echo", {"text": secret}, timeout=5) == {"text": secret}
        with pytest.raises(ToolFailed):
            await handle.call("error", {"message": "no"}, timeout=5)

    started = _events(caplog, "mcp.server.started")[0]
    assert started.server == "fixture" and started.pid > 0  # type: ignore[attr-defined]
    assert started.duration_ms >= 0  # type: ignore[attr-defined]
    failed = _events(caplog, "mcp.tool.failed")[0]
    assert (failed.tool, failed.error_kind) == ("error", "ToolFailed")  # type: ignore[attr-defined]
    called = _events(caplog, "mcp.tool.called")[0]
    assert called.result_size > 0  # type: ignore[attr-defined]
    for record in caplog.records:
        assert secret not in record.getMessage()
        assert secret not in repr(vars(record))


# -- streamable HTTP ---------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def http_fixture_url(fixture_server_script: Path) -> Iterator[str]:
    """The fixture server on 127.0.0.1 over streamable HTTP; its URL."""
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, str(fixture_server_script), "--http", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            time.sleep(0.05)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        server.terminate()
        server.wait(timeout=10)


async def test_an_http_server_is_called_with_the_key_from_the_environment(
    http_fixture_url: str,
) -> None:
    config = ServerConfig(transport="http", url=http_fixture_url, api_key_env="FIXTURE_API_KEY")
    handle = make_handle(
        "remote", config, Launch("unused"), environ={"FIXTURE_API_KEY": "key-0042"}
    )
    async with handle:
        assert await handle.call("echo", {"text": "far"}, timeout=10) == {"text": "far"}
        seen = await handle.call("header", {"name": "authorization"}, timeout=10)

    assert seen == "Bearer key-0042"
    assert "key-0042" not in repr(handle)


async def test_an_http_server_that_is_not_there_is_unavailable() -> None:
    config = ServerConfig(transport="http", url=f"http://127.0.0.1:{_free_port()}/mcp")
    handle = make_handle("remote", config, Launch("unused"))
    with pytest.raises(ServerUnavailable, match="failed to start"):
        await handle.start()
    await handle.close()
