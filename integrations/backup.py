"""Backups of everything the bot keeps, through our backup server: scheduled, on demand, restored.

The sources are the store (`<data_dir>/taskbot.db`, copied with SQLite's online-backup API
while the bot runs) and each server's state directory under `<data_dir>/servers`; archives
and their sidecars live in this integration's own state directory, which is never a source.
`scheduled_backup()` is the scheduler's job: one backup, then only the newest `KEEP` stay.
Restoring replaces live files, so only the command line does it, with no bot running
(`taskbot restore`), and only after the archive passed verification (checksums of every file
and `PRAGMA integrity_check` of every database).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import re
import shutil
import tarfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import IntegrationError, ToolFailed
from core.models import Change
from core.settings import SERVER_NAMES
from integrations.mcp.integration import McpIntegration
from integrations.mcp.launch import Launch, python_module

log = logging.getLogger("taskbot.backup")

KEEP = 10  # backups the schedule leaves behind: ten days of daily ones by default
STORE_COMPONENT = "taskbot"
_ID = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True, slots=True)
class BackupInfo:
    backup_id: str
    path: Path
    size: int
    components: tuple[str, ...]
    created: str
    label: str | None = None

    @classmethod
    def from_tool(cls, raw: dict[str, Any]) -> BackupInfo:
        return cls(
            backup_id=str(raw["id"]),
            path=Path(str(raw["path"])),
            size=int(raw["size"]),
            components=tuple(str(c) for c in raw.get("components") or ()),
            created=str(raw.get("created") or ""),
            label=raw.get("label"),
        )


@dataclass(frozen=True, slots=True)
class Verification:
    backup_id: str
    ok: bool
    problems: tuple[str, ...]


class BackupError(ToolFailed):
    """A backup file that is no usable archive (not ours, damaged); nothing was replaced."""

    def __init__(self, message: str) -> None:
        super().__init__(message, server="backup")


def backup_sources(data_dir: Path) -> dict[str, Path]:
    """What a backup holds: the store and every other server's state directory."""
    root = data_dir.resolve()
    sources = {STORE_COMPONENT: root / "taskbot.db"}
    sources |= {name: root / "servers" / name for name in SERVER_NAMES if name != "backup"}
    return sources


class BackupIntegration(McpIntegration):
    """Creates, lists, verifies, prunes and restores backups of the bot's state."""

    name = "backup"

    @property
    def home(self) -> Path:
        return self.state_dir

    def _launch(self) -> Launch:
        sources = os.pathsep.join(f"{n}={p}" for n, p in backup_sources(self.data_dir).items())
        env = {"BACKUP_HOME": str(self.state_dir), "BACKUP_SOURCES": sources}
        return python_module("integrations.servers.backup", env=env)

    async def _apply(self, change: Change) -> str | None:
        return None  # backups follow the schedule, not each task

    async def _erase(self, change: Change, external_id: str | None) -> None:
        return None

    async def create(self, label: str | None = None) -> BackupInfo:
        """One backup of every source that exists now."""
        raw = await self._call_dict("create_backup", {"label": label} if label else {})
        info = BackupInfo.from_tool(raw)
        log.info(
            "backup.created",
            extra={"backup_id": info.backup_id, "size": info.size, "label": label},
        )
        return info

    async def list_backups(self, limit: int = 20) -> list[BackupInfo]:
        raw = await self._call_list("list_backups", {"limit": limit})
        return [BackupInfo.from_tool(item) for item in raw]

    async def verify(self, backup_id: str) -> Verification:
        raw = await self._call_dict("verify_backup", {"id": backup_id})
        problems = tuple(str(p) for p in raw.get("problems") or ())
        return Verification(backup_id, bool(raw.get("ok")) and not problems, problems)

    async def restore(self, backup_id: str) -> dict[str, str]:
        """Replace the live state with a backup; the server verifies it first."""
        raw = await self._call_dict("restore_backup", {"id": backup_id, "confirm": True})
        return {str(k): str(v) for k, v in (raw.get("restored") or {}).items()}

    async def prune(self, keep: int = KEEP) -> list[str]:
        raw = await self._call_dict("prune_backups", {"keep": keep})
        return [str(i) for i in raw.get("deleted") or ()]

    async def scheduled_backup(self) -> BackupInfo | None:
        """The scheduler's job: back up now, keep the newest KEEP; failures are logged."""
        try:
            info = await self.create("scheduled")
            deleted = await self.prune(KEEP)
        except IntegrationError as exc:
            log.error("backup.scheduled.failed", extra={"error": str(exc)})
            return None
        log.info("backup.scheduled", extra={"backup_id": info.backup_id, "pruned": len(deleted)})
        return info

    async def import_archive(self, archive: Path) -> tuple[str, bool]:
        """The id of an archive file, and whether it was adopted into the catalogue just now."""
        return await asyncio.to_thread(self._import, archive)

    async def delete(self, backup_id: str) -> None:
        await self._call("delete_backup", {"id": backup_id})

    def _import(self, given: Path) -> tuple[str, bool]:
        # LIMIT: the server has no import tool, so this writes its sidecar format (manifest
        # plus path, size, archive checksum) itself; a change of that format on the server
        # must be made here too. An `import_backup` tool would remove the coupling. The
        # archive checksum is computed here, so only the per-file checksums and the
        # integrity checks inside guard an archive from elsewhere; they still run.
        archive = given.resolve()
        if not archive.is_file():
            raise BackupError(f"{archive} is not a file")
        manifest = _read_manifest(archive)
        backup_id = str(manifest.get("id") or "")
        if not _ID.match(backup_id) or not isinstance(manifest.get("components"), dict):
            raise BackupError(f"{archive} is not a taskbot backup (its manifest has no id)")
        sidecar = self.home / f"{backup_id}.json"
        target = self.home / f"{backup_id}.tar.gz"
        if sidecar.is_file() and target.resolve() == archive:
            return backup_id, False  # already in the catalogue
        self.home.mkdir(parents=True, exist_ok=True)
        if target.resolve() != archive:
            shutil.copyfile(archive, target)
        info = manifest | {
            "path": str(target),
            "size": target.stat().st_size,
            "archive_sha256": _sha256(target),
            "skipped": [],
        }
        part = sidecar.with_suffix(".part")
        part.write_text(json.dumps(info, indent=1), encoding="utf-8")
        os.replace(part, sidecar)
        return backup_id, True


def _read_manifest(archive: Path) -> dict[str, Any]:
    try:
        with tarfile.open(archive, "r:gz") as tar:
            member = tar.extractfile("manifest.json")
            if member is None:
                raise BackupError(f"{archive} is not a taskbot backup (no manifest)")
            data = json.loads(member.read())
    except KeyError as exc:
        raise BackupError(f"{archive} is not a taskbot backup (no manifest)") from exc
    except (tarfile.TarError, OSError, EOFError, zlib.error, ValueError) as exc:
        raise BackupError(f"{archive} is not a readable backup archive ({exc})") from exc
    if not isinstance(data, dict):
        raise BackupError(f"{archive} is not a taskbot backup (bad manifest)")
    return data


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
