"""Real MCP servers as real child processes, with a check that none outlives its test."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil
import pytest

from core.models import Task, TaskStatus, new_uid
from integrations.mcp import StdioServerHandle
from integrations.mcp.forking import ForkedServerHandle

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FIXTURE_SERVER = PROJECT_ROOT / "tests" / "faults" / "fixture_server.py"
FIXTURE_MODULE = "tests.faults.fixture_server"
NOW = datetime(2026, 12, 4, 12, 0, tzinfo=UTC)
DEADLINE = datetime(2026, 12, 10, 17, 0, tzinfo=UTC)


def make_task(**changes: Any) -> Task:
    """Task #12 as the store hands it to an integration; keywords change any field."""
    task = Task(
        id=12,
        uid=new_uid(),
        title="Write the quarterly report",
        description="Numbers for Q4, then the summary.",
        priority=2,
        deadline=DEADLINE,
        tags=("work", "q4"),
        status=TaskStatus.OPEN,
        chat_id=1,
        author_id=1,
        assignee="alice",
        created_at=NOW,
        updated_at=NOW,
    )
    return task.evolve(**changes)


def free_port() -> int:
    """A loopback port free right now, for a local stand-in server to listen on."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def live_children() -> set[int]:
    """Pids of this process's descendants that are still running (zombies count as leaks)."""
    pids = set()
    for child in psutil.Process().children(recursive=True):
        try:
            child.status()
        except psutil.NoSuchProcess:
            continue
        pids.add(child.pid)
    return pids


@pytest.fixture
def no_leaked_children() -> Iterator[None]:
    """Fail the test if it leaves a child process (or an unreaped zombie) behind."""
    before = live_children()
    yield
    deadline = time.monotonic() + 3.0
    leaked = live_children() - before
    while leaked and time.monotonic() < deadline:
        time.sleep(0.05)
        leaked = live_children() - before
    assert not leaked, f"child processes left behind: {sorted(leaked)}"


FixtureHandle = Callable[..., StdioServerHandle]


@pytest.fixture(params=["spawned", "forked"])
def fixture_handle(request: pytest.FixtureRequest) -> FixtureHandle:
    """Makes handles on the misbehaving fixture server (not started); keywords become env.

    Every test runs twice: the server spawned as a command, and forked from the fork server
    as `python -m tests.faults.fixture_server` (how the project's Python servers start).
    """

    def make(name: str = "fixture", **env: str) -> StdioServerHandle:
        if request.param == "forked":
            return ForkedServerHandle(name, FIXTURE_MODULE, env=env, cwd=PROJECT_ROOT)
        return StdioServerHandle(name, sys.executable, [str(FIXTURE_SERVER)], env=env)

    return make


@pytest.fixture
def fixture_server_script() -> Path:
    """The fixture server's script, for tests that run it themselves."""
    return FIXTURE_SERVER


@pytest.fixture
async def fixture_server(
    fixture_handle: FixtureHandle,
    no_leaked_children: None,
) -> AsyncIterator[StdioServerHandle]:
    """The fixture server, started, closed after the test."""
    handle = fixture_handle()
    await handle.start()
    try:
        yield handle
    finally:
        await handle.close()


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    """A fresh TASKBOT_DATA_DIR for one test."""
    return tmp_path / "data"
