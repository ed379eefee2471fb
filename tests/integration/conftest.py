"""Real MCP servers as real child processes, with a check that none outlives its test."""

from __future__ import annotations

import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import psutil
import pytest

from integrations.mcp import StdioServerHandle

FIXTURE_SERVER = Path(__file__).resolve().parents[1] / "faults" / "fixture_server.py"


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


@pytest.fixture
def fixture_handle() -> FixtureHandle:
    """Makes handles on the misbehaving fixture server (not started); keywords become env."""

    def make(name: str = "fixture", **env: str) -> StdioServerHandle:
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
