"""The backup server as a real process, backing up real SQLite files and a directory."""

from __future__ import annotations

import os
import sqlite3
import tarfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import pytest_asyncio

from .conftest import ToolClient, open_server, shared_server

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(60)]


@dataclass
class State:
    """The live state the server backs up: one WAL database and one directory."""

    db: Path
    files: Path
    home: Path


def _size(path: str) -> int:
    return Path(path).stat().st_size


def _exists(path: str) -> bool:
    return Path(path).exists()


def _flip_a_byte_mid_file(path: str) -> None:
    data = bytearray(Path(path).read_bytes())
    data[len(data) // 2] ^= 0xFF
    Path(path).write_bytes(bytes(data))


def _titles(db: Path) -> list[str]:
    with sqlite3.connect(db) as conn:
        return [row[0] for row in conn.execute("SELECT title FROM tasks ORDER BY title")]


@pytest.fixture(scope="module")
def state(tmp_path_factory: pytest.TempPathFactory) -> Iterator[State]:
    root = tmp_path_factory.mktemp("backup")
    db, files = root / "live" / "tasks.db", root / "live" / "files"
    files.mkdir(parents=True)
    (files / "notes.txt").write_text("keep me")
    with sqlite3.connect(db) as conn:
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("CREATE TABLE tasks (title TEXT)")
    yield State(db=db, files=files, home=root / "archives")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def backup(state: State) -> AsyncIterator[ToolClient]:
    sources = os.pathsep.join([f"tasks={state.db}", f"files={state.files}"])
    env = {"BACKUP_HOME": str(state.home), "BACKUP_SOURCES": sources}
    async with shared_server("backup", env, state.db.parent.parent) as client:
        yield client


async def test_backup_captures_rows_still_in_the_wal_and_verifies_clean(
    backup: ToolClient, state: State, tmp_path: Path
) -> None:
    writer = sqlite3.connect(state.db, isolation_level=None)
    writer.execute("PRAGMA wal_autocheckpoint=0")
    writer.executemany("INSERT INTO tasks VALUES (?)", [("Rent",), ("Milk",)])
    try:
        made = await backup.call("create_backup", label="nightly")
    finally:
        writer.close()

    assert made["components"] == ["files", "tasks"]
    assert _size(made["path"]) == made["size"]
    assert (await backup.call("verify_backup", id=made["id"])) == {
        "id": made["id"],
        "ok": True,
        "problems": [],
    }
    assert made["id"] in [b["id"] for b in await backup.call("list_backups")]
    aside = await backup.call(
        "restore_backup", id=made["id"], confirm=True, target_dir=str(tmp_path)
    )
    assert _titles(Path(aside["restored"]["tasks"])) == ["Milk", "Rent"]
    assert (tmp_path / "files" / "notes.txt").read_text() == "keep me"


async def test_restore_without_confirm_is_refused_and_changes_nothing(
    backup: ToolClient, state: State
) -> None:
    made = await backup.call("create_backup", include=["files"])
    (state.files / "notes.txt").write_text("edited")

    error = await backup.fail("restore_backup", id=made["id"])

    assert "confirm=true" in error
    assert (state.files / "notes.txt").read_text() == "edited"


async def test_confirmed_restore_puts_back_the_database_and_the_directory(
    backup: ToolClient, state: State
) -> None:
    (state.files / "notes.txt").write_text("keep me")
    made = await backup.call("create_backup")
    with sqlite3.connect(state.db) as conn:
        conn.execute("INSERT INTO tasks VALUES ('Added later')")
    (state.files / "stray.txt").write_text("new")

    result = await backup.call("restore_backup", id=made["id"], confirm=True)

    assert set(result["restored"]) == {"files", "tasks"}
    assert _titles(state.db) == ["Milk", "Rent"]
    assert sorted(p.name for p in state.files.iterdir()) == ["notes.txt"]
    assert not _exists(f"{state.db}-wal")


async def test_a_corrupted_archive_fails_verification_and_is_not_restored(
    backup: ToolClient, state: State
) -> None:
    made = await backup.call("create_backup", include=["files"])
    _flip_a_byte_mid_file(made["path"])
    (state.files / "notes.txt").write_text("current")

    verdict = await backup.call("verify_backup", id=made["id"])
    error = await backup.fail("restore_backup", id=made["id"], confirm=True)

    assert verdict["ok"] is False
    assert "checksum" in verdict["problems"][0]
    assert "failed verification" in error
    assert (state.files / "notes.txt").read_text() == "current"


async def test_a_tampered_member_is_named_by_verification(
    backup: ToolClient, state: State, tmp_path: Path
) -> None:
    made = await backup.call("create_backup", include=["files"])
    archive = Path(made["path"])
    with tarfile.open(archive, "r:gz") as tar:
        tar.extractall(tmp_path, filter="data")
    (tmp_path / "files" / "notes.txt").write_text("tampered")
    with tarfile.open(archive, "w:gz") as tar:
        for member in ("manifest.json", "files"):
            tar.add(tmp_path / member, arcname=member)

    verdict = await backup.call("verify_backup", id=made["id"])

    assert verdict["ok"] is False
    assert any("checksum" in problem for problem in verdict["problems"])


async def test_unknown_backups_and_components_give_clear_errors(backup: ToolClient) -> None:
    assert "not found" in await backup.fail("verify_backup", id="20000101T000000Z-abcdef")
    assert "not found" in await backup.fail("restore_backup", id="../etc", confirm=True)
    assert "Unknown components" in await backup.fail("create_backup", include=["photos"])


async def test_a_keyed_create_replayed_makes_one_backup(backup: ToolClient) -> None:
    before = len(await backup.call("list_backups", limit=100))

    first = await backup.call("create_backup", idempotency_key="daily-2026-12-04")
    replay = await backup.call("create_backup", idempotency_key="daily-2026-12-04")

    assert replay == first
    assert len(await backup.call("list_backups", limit=100)) == before + 1


async def test_prune_keeps_only_the_newest_backups(backup: ToolClient) -> None:
    newest = (await backup.call("create_backup", label="latest"))["id"]

    pruned = await backup.call("prune_backups", keep=2)

    remaining = [b["id"] for b in await backup.call("list_backups", limit=100)]
    assert remaining == pruned["kept"]
    assert len(remaining) == 2
    assert remaining[0] == newest
    assert pruned["deleted"]
    assert "not found" in await backup.fail("delete_backup", id=pruned["deleted"][0])


async def test_archives_kept_inside_a_backed_up_directory_are_left_out(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    (state_dir / "deltatask").mkdir(parents=True)
    (state_dir / "deltatask" / "tasks.txt").write_text("x")
    env = {"BACKUP_HOME": str(state_dir / "backups"), "BACKUP_SOURCES": f"state={state_dir}"}
    async with open_server("backup", env, tmp_path) as client:
        await client.call("create_backup")
        second = await client.call("create_backup")

    with tarfile.open(second["path"], "r:gz") as tar:
        names = tar.getnames()
    assert "state/deltatask/tasks.txt" in names
    assert not [name for name in names if name.startswith("state/backups")]


async def test_an_empty_component_folder_is_backed_up_and_leaves_no_partial_archive(
    tmp_path: Path,
) -> None:
    (tmp_path / "memory").mkdir()  # a server that has stored nothing yet
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "note.md").write_text("hello")
    home = tmp_path / "backups"
    env = {
        "BACKUP_HOME": str(home),
        "BACKUP_SOURCES": os.pathsep.join(
            [f"memory={tmp_path / 'memory'}", f"files={tmp_path / 'files'}"]
        ),
    }
    async with open_server("backup", env, tmp_path) as client:
        made = await client.call("create_backup")
        verified = await client.call("verify_backup", id=made["id"])

    assert made["components"] == ["files", "memory"]
    assert verified["ok"] is True
    with tarfile.open(made["path"], "r:gz") as tar:
        assert "files/note.md" in tar.getnames()
    assert not list(home.glob("*.part"))
