"""`taskbot backup` and `taskbot restore` as people run them: a real process, exit codes, stderr."""

from __future__ import annotations

import asyncio
import os
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from bot.datadir import DataDirLock
from core.models import new_uid
from core.store import SqliteTaskStore

pytestmark = pytest.mark.timeout(120)

REPO = Path(__file__).resolve().parents[2]


def taskbot(*args: str) -> subprocess.CompletedProcess[str]:
    """Run the installed `taskbot` console script (or the module) and wait for it."""
    script = Path(sys.executable).parent / "taskbot"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "bot.cli"]
    env = {k: v for k, v in os.environ.items() if k != "TASKBOT_DATA_DIR"}
    return subprocess.run(
        [*command, *args], capture_output=True, text=True, cwd=REPO, env=env, timeout=100
    )


def seed(data_dir: Path, *titles: str) -> None:
    """Tasks in a real store, and a file in one server's state directory."""
    asyncio.run(_insert(data_dir, titles))
    notes = data_dir / "servers" / "filesystem" / "files"
    notes.mkdir(parents=True, exist_ok=True)
    (notes / "note.md").write_text(f"{len(titles)} tasks\n")


async def _insert(data_dir: Path, titles: tuple[str, ...]) -> None:
    async with SqliteTaskStore(data_dir / "taskbot.db") as store:
        for title in titles:
            await store.db.execute(
                "INSERT INTO tasks (uid, title, priority, status, chat_id, created_at, updated_at)"
                " VALUES (?, ?, 3, 'open', 1, '2026-12-04', '2026-12-04')",
                (new_uid(), title),
            )


def titles(data_dir: Path) -> list[str]:
    with sqlite3.connect(data_dir / "taskbot.db") as conn:
        return [row[0] for row in conn.execute("SELECT title FROM tasks ORDER BY id")]


def backup_id(stdout: str) -> str:
    match = re.match(r"backup (\S+): \d+ bytes, verified\n", stdout)
    assert match, stdout
    return match.group(1)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


def test_backup_then_restore_by_id_brings_the_tasks_back(data_dir: Path) -> None:
    seed(data_dir, "Pay rent", "Call mum")

    made = taskbot("backup", "--data-dir", str(data_dir))
    seed(data_dir, "Written after the backup")
    restored = taskbot("restore", backup_id(made.stdout), "--data-dir", str(data_dir))

    assert made.returncode == 0, made.stderr
    assert "  components: filesystem, taskbot\n" in made.stdout
    assert restored.returncode == 0, restored.stderr
    assert f"  taskbot -> {data_dir.resolve() / 'taskbot.db'}" in restored.stdout
    assert titles(data_dir) == ["Pay rent", "Call mum"]
    assert (data_dir / "servers/filesystem/files/note.md").read_text() == "2 tasks\n"


def test_a_restore_keeps_the_state_it_replaces_so_it_can_be_undone(data_dir: Path) -> None:
    seed(data_dir, "Pay rent")
    made = taskbot("backup", "--data-dir", str(data_dir))
    seed(data_dir, "Written after the backup")

    restored = taskbot("restore", backup_id(made.stdout), "--data-dir", str(data_dir))
    undo = re.search(r"the state before this restore is backup (\S+) ", restored.stdout)
    assert undo, restored.stdout
    undone = taskbot("restore", undo.group(1), "--data-dir", str(data_dir))

    assert undone.returncode == 0, undone.stderr
    assert titles(data_dir) == ["Pay rent", "Written after the backup"]


def test_an_archive_file_from_elsewhere_can_be_restored_by_its_path(
    data_dir: Path, tmp_path: Path
) -> None:
    seed(data_dir, "Pay rent")
    made = taskbot("backup", "--data-dir", str(data_dir))
    archive = data_dir / "servers" / "backup" / f"{backup_id(made.stdout)}.tar.gz"
    moved = tmp_path / "usb" / archive.name
    moved.parent.mkdir()
    archive.rename(moved)
    (archive.with_suffix("").with_suffix(".json")).unlink()  # the catalogue forgot it
    seed(data_dir, "Written after the backup")

    restored = taskbot("restore", str(moved), "--data-dir", str(data_dir))

    assert restored.returncode == 0, restored.stderr
    assert titles(data_dir) == ["Pay rent"]


def test_a_corrupted_archive_is_refused_with_the_reason_and_nothing_changes(
    data_dir: Path,
) -> None:
    seed(data_dir, "Pay rent")
    made = taskbot("backup", "--data-dir", str(data_dir))
    found = backup_id(made.stdout)
    archive = data_dir / "servers" / "backup" / f"{found}.tar.gz"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    seed(data_dir, "Written after the backup")

    refused = taskbot("restore", found, "--data-dir", str(data_dir))

    assert refused.returncode == 1
    assert f"taskbot: backup {found} failed verification; nothing was restored:" in refused.stderr
    assert "checksum does not match" in refused.stderr
    assert refused.stdout == ""
    assert titles(data_dir) == ["Pay rent", "Written after the backup"]


def test_a_file_that_is_no_backup_is_named_as_such(data_dir: Path, tmp_path: Path) -> None:
    seed(data_dir, "Pay rent")
    bogus = tmp_path / "holiday-photos.tar.gz"
    bogus.write_bytes(b"\x00" * 64)

    refused = taskbot("restore", str(bogus), "--data-dir", str(data_dir))
    unknown = taskbot("restore", "20990101T000000000000Z-beef", "--data-dir", str(data_dir))

    assert refused.returncode == 1
    assert refused.stderr.strip() == (
        f"taskbot: {bogus} is not a readable backup archive (not a gzip file); nothing was restored"
    )
    assert unknown.returncode == 1
    assert "taskbot: no backup '20990101T000000000000Z-beef' in " in unknown.stderr
    assert titles(data_dir) == ["Pay rent"]


def test_backup_and_restore_refuse_while_a_bot_holds_the_data_directory(
    data_dir: Path,
) -> None:
    seed(data_dir, "Pay rent")
    with DataDirLock(data_dir):
        made = taskbot("backup", "--data-dir", str(data_dir))
        restored = taskbot("restore", "anything", "--data-dir", str(data_dir))

    for refused in (made, restored):
        assert refused.returncode == 3
        assert refused.stderr.splitlines()[0] == (
            f"taskbot: {data_dir} is in use by a running taskbot (pid {os.getpid()}); stop it first"
        )
    assert "send /backup in its admin chat" in made.stderr
    assert not (data_dir / "servers" / "backup").exists()
