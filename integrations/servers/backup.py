"""Backups of the bot's state: SQLite files via the online-backup API, other files as they are.

Sources come from BACKUP_SOURCES, `name=path` entries joined by os.pathsep; a path is a file or
a directory (SQLite files inside are copied through the backup API too, their -wal/-shm left
out). A backup is `<id>.tar.gz` holding `manifest.json` (sha256 per file) plus a `<id>.json`
sidecar that also records the archive's own sha256. Restore verifies first, then swaps each
component in with renames in the destination's own directory, so a failure replaces nothing.
Run: BACKUP_HOME=<dir> BACKUP_SOURCES=tasks=/state/deltatask:notes=/state/notes.db \
    python -m integrations.servers.backup
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import shutil
import sqlite3
import tarfile
import tempfile
import uuid
import zlib
from pathlib import Path
from typing import Any

from integrations.servers._common import (
    Database,
    ErrorDictServer,
    ToolFailure,
    log_level,
    now_utc,
    state_home,
    to_iso,
)

_SQLITE_MAGIC = b"SQLite format 3\x00"
_SIDE_FILES = ("-wal", "-shm", "-journal")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")

server = ErrorDictServer("backup", version="1.0.0", log_level=log_level())


@functools.cache
def _home() -> Path:
    return state_home("BACKUP_HOME", "backups")


@functools.cache
def _db() -> Database:
    # Only the idempotency table: the archives and their sidecars are the catalogue.
    return Database(_home() / "backup-journal.db", "")


def _sources() -> dict[str, Path]:
    sources: dict[str, Path] = {}
    for entry in filter(None, os.environ.get("BACKUP_SOURCES", "").split(os.pathsep)):
        name, _, path = entry.partition("=")
        if not _NAME.match(name) or not path:
            raise ToolFailure(f"BACKUP_SOURCES entry {entry!r} is not name=path")
        sources[name] = Path(path).expanduser().resolve()
    return sources


def _is_sqlite(path: Path) -> bool:
    with path.open("rb") as head:
        return head.read(16) == _SQLITE_MAGIC


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _copy_file(source: Path, target: Path) -> None:
    """Copy one file; a live SQLite database goes through the backup API for a consistent copy."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if not _is_sqlite(source):
        shutil.copy2(source, target)
        return
    src, dst = sqlite3.connect(source), sqlite3.connect(target)
    try:
        src.backup(dst)
        dst.execute("PRAGMA journal_mode=DELETE")  # the copy must stand alone, without a WAL
    finally:
        src.close()
        dst.close()


def _stage(name: str, source: Path, staging: Path) -> dict[str, Any]:
    """Copy one component under staging/name and describe it for the manifest."""
    if source.is_file():
        files = [(source, staging / name / source.name)]
    else:
        # BACKUP_HOME may sit inside a source (<state>/backups): never archive the archives.
        paths = sorted(p for p in source.rglob("*") if p.is_file() and _home() not in p.parents)
        kept = {p for p in paths if not any(p.name.endswith(s) for s in _SIDE_FILES)}
        files = [(p, staging / name / p.relative_to(source)) for p in paths if p in kept]
        # An empty component (a server that has stored nothing yet) is still a component:
        # its folder must exist in staging, or archiving it fails.
        (staging / name).mkdir(parents=True, exist_ok=True)
    described = {}
    for origin, target in files:
        _copy_file(origin, target)
        member = target.relative_to(staging).as_posix()
        described[member] = {"sha256": _sha256(target), "sqlite": _is_sqlite(target)}
    kind = "file" if source.is_file() else "dir"
    return {"kind": kind, "source": str(source), "files": described}


def _sidecar(backup_id: str) -> dict[str, Any]:
    path = _home() / f"{backup_id}.json"
    if not _NAME.match(backup_id) or not path.is_file():
        raise ToolFailure(f"Backup {backup_id!r} not found")
    info: dict[str, Any] = json.loads(path.read_text())
    return info


def _summary(info: dict[str, Any]) -> dict[str, Any]:
    keys = ("id", "label", "created", "path", "size", "skipped")
    return {k: info.get(k) for k in keys} | {"components": sorted(info["components"])}


@server.tool()
def create_backup(
    label: str | None = None,
    include: list[str] | None = None,
    idempotency_key: str | None = None,
) -> dict[str, Any]:
    """Archive the configured sources (or those named in include) with a checksum manifest."""
    sources = _sources()
    unknown = set(include or ()) - set(sources)
    if unknown:
        raise ToolFailure(f"Unknown components {sorted(unknown)}; known: {sorted(sources)}")
    chosen = {n: p for n, p in sources.items() if include is None or n in include}
    present = {n: p for n, p in chosen.items() if p.exists()}
    if not present:
        raise ToolFailure("Nothing to back up: no configured source exists")
    return _db().once("create_backup", idempotency_key, lambda _: _archive(label, present, chosen))


def _archive(
    label: str | None, present: dict[str, Path], chosen: dict[str, Path]
) -> dict[str, Any]:
    created = now_utc()
    # Microseconds in the id make ids sort in creation order, which list and prune rely on.
    backup_id = f"{created:%Y%m%dT%H%M%S%fZ}-{uuid.uuid4().hex[:4]}"
    home = _home()
    manifest = {"format": 1, "id": backup_id, "label": label, "created": to_iso(created)}
    with tempfile.TemporaryDirectory(dir=home, prefix=".staging-") as tmp:
        staging = Path(tmp)
        manifest["components"] = {n: _stage(n, p, staging) for n, p in present.items()}
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=1))
        part = home / f"{backup_id}.tar.gz.part"
        try:
            with tarfile.open(part, "w:gz") as tar:
                tar.add(staging / "manifest.json", arcname="manifest.json")
                for name in present:
                    tar.add(staging / name, arcname=name)
        except BaseException:
            part.unlink(missing_ok=True)  # never leave half an archive behind
            raise
        archive = part.with_name(f"{backup_id}.tar.gz")
        os.replace(part, archive)
    info = manifest | {
        "path": str(archive),
        "size": archive.stat().st_size,
        "archive_sha256": _sha256(archive),
        "skipped": sorted(set(chosen) - set(present)),
    }
    sidecar = home / f"{backup_id}.json"
    sidecar.with_suffix(".part").write_text(json.dumps(info, indent=1))
    os.replace(sidecar.with_suffix(".part"), sidecar)
    return _summary(info)


@server.tool()
def list_backups(limit: int = 20) -> list[dict[str, Any]]:
    """List backups, newest first."""
    infos = [json.loads(p.read_text()) for p in _home().glob("*.json")]
    infos.sort(key=lambda info: str(info["id"]), reverse=True)
    return [_summary(info) for info in infos[:limit]]


def _unpack_verified(info: dict[str, Any], into: Path) -> list[str]:
    """Unpack an archive into `into` and list every way it differs from its manifests."""
    archive = Path(info["path"])
    if not archive.is_file():
        return [f"archive {archive} is missing"]
    if _sha256(archive) != info["archive_sha256"]:
        return ["archive checksum does not match: the file was changed or damaged"]
    try:
        with tarfile.open(archive, "r:gz") as tar:
            tar.extractall(into, filter="data")
        inner = json.loads((into / "manifest.json").read_text())
    except (tarfile.TarError, OSError, EOFError, zlib.error, ValueError) as exc:
        return [f"archive cannot be read: {exc}"]
    problems = [] if inner["components"] == info["components"] else ["manifests disagree"]
    expected = {m: d for c in inner["components"].values() for m, d in c["files"].items()}
    found = {p.relative_to(into).as_posix() for p in into.rglob("*") if p.is_file()}
    problems += [f"{m}: missing" for m in sorted(set(expected) - found)]
    problems += [f"{m}: not in manifest" for m in sorted(found - set(expected) - {"manifest.json"})]
    for member, detail in expected.items():
        if member in found and _sha256(into / member) != detail["sha256"]:
            problems.append(f"{member}: checksum mismatch")
        elif member in found and detail["sqlite"]:
            problems += [f"{member}: {p}" for p in _integrity(into / member)]
    return problems


def _integrity(path: Path) -> list[str]:
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        rows = conn.execute("PRAGMA integrity_check").fetchall()
    except sqlite3.DatabaseError as exc:
        return [f"integrity_check failed: {exc}"]
    finally:
        conn.close()
    return [] if rows == [("ok",)] else [str(r[0]) for r in rows]


@server.tool()
def verify_backup(id: str) -> dict[str, Any]:
    """Check a backup's archive checksum, every file's sha256 and each database's integrity."""
    info = _sidecar(id)
    with tempfile.TemporaryDirectory(dir=_home(), prefix=".verify-") as tmp:
        problems = _unpack_verified(info, Path(tmp))
    return {"id": id, "ok": not problems, "problems": problems}


def _swap_in(staged: Path, destination: Path) -> None:
    """Put staged in place of destination with renames inside destination's own directory."""
    destination.parent.mkdir(parents=True, exist_ok=True)
    landing = destination.with_name(f".{destination.name}.restoring")
    shutil.rmtree(landing, ignore_errors=True)
    if staged.is_dir():
        shutil.copytree(staged, landing)
    else:
        shutil.copy2(staged, landing)
    if destination.is_dir():
        # LIMIT: a directory swap is two renames; a crash between them leaves the old tree at
        # .<name>.retired and nothing in place. renameat2(RENAME_EXCHANGE) would make it one step.
        retired = destination.with_name(f".{destination.name}.retired")
        shutil.rmtree(retired, ignore_errors=True)
        os.replace(destination, retired)
        os.replace(landing, destination)
        shutil.rmtree(retired)
        return
    # A stale -wal next to a replaced database would be replayed into it: remove it first.
    for suffix in _SIDE_FILES:
        destination.with_name(destination.name + suffix).unlink(missing_ok=True)
    os.replace(landing, destination)


@server.tool()
def restore_backup(
    id: str,
    confirm: bool = False,
    components: list[str] | None = None,
    target_dir: str | None = None,
) -> dict[str, Any]:
    """Replace current state with a verified backup (confirm=true); target_dir restores aside."""
    # LIMIT: a server holding a restored database open keeps reading the old file until it is
    # restarted; the caller must stop those servers first (or restore into target_dir).
    info = _sidecar(id)
    names = sorted(components or info["components"])
    unknown = set(names) - set(info["components"])
    if unknown:
        raise ToolFailure(f"Backup {id} has no components {sorted(unknown)}")
    if not confirm:
        raise ToolFailure(f"Refusing to restore without confirm=true; it replaces: {names}")
    sources = _sources()
    with tempfile.TemporaryDirectory(dir=_home(), prefix=".restore-") as tmp:
        problems = _unpack_verified(info, Path(tmp))
        if problems:
            raise ToolFailure(f"Backup {id} failed verification, nothing restored: {problems}")
        restored = {}
        for name in names:
            component = info["components"][name]
            origin = sources.get(name, Path(component["source"]))
            base = Path(target_dir) / name if target_dir else origin
            if component["kind"] == "file":
                staged = Path(tmp) / name / origin.name
                base = base / origin.name if target_dir else base
            else:
                staged = Path(tmp) / name
            _swap_in(staged, base)
            restored[name] = str(base)
    return {"id": id, "restored": restored}


@server.tool()
def delete_backup(id: str, idempotency_key: str | None = None) -> dict[str, Any]:
    """Delete one backup's archive and sidecar."""

    def run(_: sqlite3.Connection) -> dict[str, Any]:
        info = _sidecar(id)
        Path(info["path"]).unlink(missing_ok=True)
        (_home() / f"{id}.json").unlink()
        return {"id": id, "deleted": True}

    return _db().once("delete_backup", idempotency_key, run)


@server.tool()
def prune_backups(keep: int = 10) -> dict[str, Any]:
    """Delete all but the newest `keep` backups (at least one is always kept)."""
    if keep < 1:
        raise ToolFailure("keep must be at least 1")
    ordered = [b["id"] for b in list_backups(limit=1_000_000)]
    for backup_id in ordered[keep:]:
        delete_backup(backup_id)
    return {"deleted": ordered[keep:], "kept": ordered[:keep]}


def main() -> None:
    """Read the sources and open the journal first, so bad settings fail before the handshake."""
    _sources()
    _db()
    server.run("stdio")


if __name__ == "__main__":
    main()
