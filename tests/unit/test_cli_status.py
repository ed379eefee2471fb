"""`taskbot health` and `taskbot stats` as people run them, beside a running bot or not."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path

import pytest

from bot.cli import DEMO_MARK
from bot.datadir import DataDirLock
from core.monitoring import SNAPSHOT_NAME, write_snapshot
from core.orchestrator import EnterpriseTaskOrchestrator
from core.settings import load_config
from tests.unit.test_cli_backup import seed, taskbot

pytestmark = pytest.mark.timeout(120)


async def _snapshot(data_dir: Path) -> None:
    """What a running bot leaves after a health check (its servers: none started here)."""
    config = load_config()
    async with EnterpriseTaskOrchestrator(
        config=config, data_dir=data_dir, integrations={}
    ) as orch:
        write_snapshot(orch, data_dir / "logs" / SNAPSHOT_NAME)


def test_stats_of_a_directory_without_taskbot_data_says_so_and_creates_nothing(
    tmp_path: Path,
) -> None:
    missing = tmp_path / "dta"  # a typo of data

    result = taskbot("stats", "--data-dir", str(missing))

    assert result.returncode == 2
    assert result.stderr.strip() == f"taskbot: no taskbot data in {missing} (no taskbot.db)"
    assert not missing.exists()


def test_stats_counts_the_tasks_of_a_data_directory(tmp_path: Path) -> None:
    seed(tmp_path / "data", "Pay rent", "Buy milk")

    result = taskbot("stats", "--data-dir", str(tmp_path / "data"))

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["tasks"]["open"] == 2


def test_health_beside_a_running_bot_reads_its_snapshot_and_starts_no_server(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    asyncio.run(_snapshot(data_dir))
    with DataDirLock(data_dir):
        result = taskbot("health", "--data-dir", str(data_dir))

    assert result.returncode == 0, result.stderr
    first, *rows = result.stdout.splitlines()
    assert first.startswith(f"running bot (pid {os.getpid()}), last health check ")
    assert any(line.split()[:2] == ["deltatask", "DISABLED"] for line in rows)
    assert not (data_dir / "servers").exists()


def test_health_beside_a_bot_that_has_not_checked_yet_is_a_clear_error(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    with DataDirLock(data_dir):
        result = taskbot("health", "--data-dir", str(data_dir))

    assert result.returncode == 2
    assert "is in use by a running taskbot" in result.stderr
    assert result.stderr.strip().endswith("it has written no health snapshot yet")
    assert not (data_dir / "servers").exists()


def test_a_server_that_cannot_be_built_is_an_error_and_the_command_exits(tmp_path: Path) -> None:
    """Regression: the store stayed open after a start-up error and the process never exited."""
    config = load_config().with_servers(
        memory={
            "transport": "http",
            "url": "http://127.0.0.1:9/mcp",
            "api_key_env": "TASKBOT_TEST_UNSET_KEY",
        }
    )
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config.model_dump(mode="json")))
    (tmp_path / "data").mkdir()

    result = taskbot("--config", str(path), "health", "--data-dir", str(tmp_path / "data"))

    assert result.returncode == 2
    assert result.stderr.strip() == (
        "taskbot: servers.memory: environment variable TASKBOT_TEST_UNSET_KEY is empty"
    )


def test_the_demo_refuses_to_wipe_a_directory_it_did_not_make(tmp_path: Path) -> None:
    """Regression: `taskbot demo --data-dir ./data` deleted a real data directory."""
    seed(tmp_path / "data", "Pay rent")

    result = taskbot("demo", "--data-dir", str(tmp_path / "data"))

    assert result.returncode == 2
    assert "the demo only wipes its own directories" in result.stderr
    assert (tmp_path / "data" / "taskbot.db").exists()


def test_the_demo_does_not_wipe_its_own_directory_while_a_bot_runs_there(tmp_path: Path) -> None:
    demo_dir = tmp_path / "demo"
    demo_dir.mkdir()
    (demo_dir / DEMO_MARK).write_text("")
    (demo_dir / "kept.txt").write_text("still here")
    with DataDirLock(demo_dir):
        result = taskbot("demo", "--data-dir", str(demo_dir))

    assert result.returncode == 2
    assert "is in use by a running taskbot" in result.stderr
    assert (demo_dir / "kept.txt").read_text() == "still here"


def test_health_of_a_mistyped_data_directory_is_an_error_not_a_new_store(tmp_path: Path) -> None:
    result = taskbot("health", "--data-dir", str(tmp_path / "dta"))

    assert result.returncode == 2
    assert result.stderr.strip() == (
        f"taskbot: no data directory {tmp_path / 'dta'} (set TASKBOT_DATA_DIR or --data-dir)"
    )
    assert not (tmp_path / "dta").exists()


def test_the_demo_runs_end_to_end_and_again_on_its_own_directory(tmp_path: Path) -> None:
    """The README's first command: every server reached, and a second run starts afresh."""
    first = taskbot("demo", "--data-dir", str(tmp_path / "demo"))
    second = taskbot("demo", "--data-dir", str(tmp_path / "demo"))

    for run in (first, second):
        assert run.returncode == 0, run.stdout + run.stderr
        assert run.stdout.rstrip().endswith("demo finished: OK")
        assert "✗" not in run.stdout  # no server missing the task
    assert "Saved task #1: Pay rent" in second.stdout  # the store was emptied in between
