"""Each task as a Markdown file through @modelcontextprotocol/server-filesystem.

The server may only touch `<state>/files`; a task lives at `tasks/<uid>.md` there and a
deleted one moves to `tasks/.trash/` (the server has no delete tool, and a trash keeps the
last words of a task anyway). What users add to a task lives beside it: files sent to the bot
under `tasks/<uid>/attachments/`, notes appended to `tasks/<uid>/notes.md`.
The server's only write tool, `write_file`, takes text: an attachment that is not UTF-8 text
is stored as MIME base64 (76-character lines) under its name plus `.b64` (`read_media_file`
reads base64, but there is no binary write). LIMIT: base64 costs a third more space and a
1-MB file travels as a 1.3-MB JSON message; a binary-capable write tool would remove both.
LIMIT: a deleted task's attachments and notes stay where they were (only `<uid>.md` moves
to the trash); moving `tasks/<uid>/` along with it would tidy them away.
A create, update or completion is one `write_file` (the fewest this server allows: it has no
tool that writes several files). LIMIT: a delete lists `tasks/` and the trash, two replies that
grow with the number of tasks (~10,000 names at 10,000 tasks); a `get_file_info` per candidate
path would make it constant, at the price of telling "absent" from the server's ENOENT text.
"""

from __future__ import annotations

import asyncio
import base64
import re
import unicodedata
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from core.models import Change, Operation
from core.settings import ServerConfig
from integrations.markdown import render_task, task_path
from integrations.mcp.integration import McpIntegration, snapshot
from integrations.mcp.launch import Launch, node_server

TRASH = "tasks/.trash"
BASE64_SUFFIX = ".b64"
BASE64_LINE = 76  # characters per line of `base64.encodebytes`, which attachments are written with
#: Longest stored attachment name, in characters, extension included.
NAME_CHARS = 100
#: Longest extension kept whole when a long name is shortened.
EXTENSION_CHARS = 16


@dataclass(frozen=True, slots=True)
class Attachment:
    """A stored file as a user knows it: its name, size and whether it went in as base64."""

    name: str
    size: int
    encoded: bool


def safe_file_name(raw: str) -> str:
    """A name that stays inside its directory: no path, no leading dot, no odd characters."""
    base = unicodedata.normalize("NFC", re.split(r"[\\/]", raw)[-1])
    cleaned = re.sub(r"[^\w.\-+,@() ]", "_", base)
    cleaned = re.sub(r"\s+", " ", cleaned).strip(" .")
    if not cleaned.strip("_"):
        cleaned = "file"
    if len(cleaned) > NAME_CHARS:
        stem, dot, extension = cleaned.rpartition(".")
        if not dot or not stem or len(extension) > EXTENSION_CHARS:
            stem, dot, extension = cleaned, "", ""
        cleaned = stem[: NAME_CHARS - len(dot + extension)].rstrip(" .") + dot + extension
    return cleaned


def attachments_dir(uid: str) -> str:
    return f"tasks/{uid}/attachments"


def notes_path(uid: str) -> str:
    return f"tasks/{uid}/notes.md"


class FilesystemIntegration(McpIntegration):
    """Writes, rewrites and trashes `tasks/<uid>.md` under the server's allowed directory."""

    name = "filesystem"
    probe_tool = ("list_allowed_directories", {})

    def __init__(self, config: ServerConfig | None = None, data_dir: Path | None = None) -> None:
        super().__init__(config, data_dir)
        self._lock = asyncio.Lock()  # a move decides its target from a listing: one at a time

    @property
    def files_dir(self) -> Path:
        return self.state_dir / "files"

    def _launch(self) -> Launch:
        return node_server("mcp-server-filesystem", str(self.files_dir))

    async def _prepare(self) -> None:
        await super()._prepare()
        self.files_dir.mkdir(parents=True, exist_ok=True)

    async def start(self) -> None:
        await super().start()
        await self._call("create_directory", {"path": self._abs(TRASH)})  # makes tasks/ too

    async def _apply(self, change: Change) -> str | None:
        path = task_path(change.task.uid)
        if change.op is Operation.DELETE:
            await self._trash(change.task.uid)
        else:
            content = render_task(snapshot(change))
            await self._call("write_file", {"path": self._abs(path), "content": content})
        return path

    async def _erase(self, change: Change, external_id: str | None) -> None:
        await self._trash(change.task.uid)

    async def locate(self, uid: str, external_id: str | None) -> str | None:
        """The task file's path under the allowed directory, or None once trashed."""
        if f"{uid}.md" not in await self._files("tasks"):
            return None
        return self._abs(task_path(uid))

    async def read(self, uid: str) -> str:
        """The task's file as the server reads it."""
        return await self._call_text("read_text_file", {"path": self._abs(task_path(uid))})

    async def _trash(self, uid: str) -> None:
        file_name = f"{uid}.md"
        async with self._lock:
            if file_name not in await self._files("tasks"):
                return  # never written or already trashed
            taken = await self._files(TRASH)
            target, n = file_name, 1
            while target in taken:  # deleted before, re-created since: keep both
                n += 1
                target = f"{uid}.{n}.md"
            await self._call(
                "move_file",
                {
                    "source": self._abs(task_path(uid)),
                    "destination": self._abs(f"{TRASH}/{target}"),
                },
            )

    async def _files(self, directory: str) -> set[str]:
        listing = await self._call_text("list_directory", {"path": self._abs(directory)})
        return {
            line[len("[FILE] ") :] for line in listing.splitlines() if line.startswith("[FILE] ")
        }

    def _abs(self, relative: str) -> str:
        return str(self.files_dir / relative)

    # -- what users add to a task --------------------------------------------------------

    async def attach(self, uid: str, name: str, data: bytes) -> Attachment:
        """Store a file with the task under a safe, unused name; returns what was stored."""
        safe = safe_file_name(name)
        text = _as_text(data)
        if text is None:
            stored, content = safe + BASE64_SUFFIX, base64.encodebytes(data).decode("ascii")
        else:
            # A text file of that name would be read back as base64: keep the two apart.
            stored = safe + ".txt" if safe.endswith(BASE64_SUFFIX) else safe
            content = text
        directory = attachments_dir(uid)
        async with self._lock:
            await self._call("create_directory", {"path": self._abs(directory)})
            stored = _unused(stored, await self._files(directory))
            path = self._abs(f"{directory}/{stored}")
            await self._call("write_file", {"path": path, "content": content})
        shown = stored.removesuffix(BASE64_SUFFIX) if text is None else stored
        return Attachment(shown, len(data), encoded=text is None)

    async def attachments(self, uid: str) -> list[Attachment]:
        """The task's stored files, by name, with their sizes as sent (base64 undone)."""
        directory = attachments_dir(uid)
        await self._call("create_directory", {"path": self._abs(directory)})
        found = []
        for stored in sorted(await self._files(directory)):
            path = self._abs(f"{directory}/{stored}")
            size = int(_field(await self._call_text("get_file_info", {"path": path}), "size") or 0)
            if stored.endswith(BASE64_SUFFIX):
                # Two lines: the server counts the empty one after the final newline.
                tail = await self._call_text("read_text_file", {"path": path, "tail": 2})
                last = next((line for line in reversed(tail.splitlines()) if line.strip()), "")
                name = stored.removesuffix(BASE64_SUFFIX)
                found.append(Attachment(name, _decoded_size(size, last.strip()), encoded=True))
            else:
                found.append(Attachment(stored, size, encoded=False))
        return found

    async def add_note(self, uid: str, note: str, *, when: datetime, heading: str) -> None:
        """Append a dated note to the task's notes.md; `heading` opens a new file."""
        path = self._abs(notes_path(uid))
        line = "- " + when.strftime("%Y-%m-%d %H:%M %Z").strip() + " · "
        line += "\n  ".join(note.strip().splitlines()) + "\n"
        async with self._lock:
            await self._call("create_directory", {"path": self._abs(f"tasks/{uid}")})
            if "notes.md" in await self._files(f"tasks/{uid}"):
                body = await self._call_text("read_text_file", {"path": path})
            else:
                body = f"# {heading}\n\n"
            await self._call("write_file", {"path": path, "content": body + line})

    async def notes(self, uid: str) -> str | None:
        """The task's notes.md as stored, or None when it has none."""
        directory = f"tasks/{uid}"
        await self._call("create_directory", {"path": self._abs(directory)})
        if "notes.md" not in await self._files(directory):
            return None
        return await self._call_text("read_text_file", {"path": self._abs(notes_path(uid))})


def _as_text(data: bytes) -> str | None:
    """The bytes as text when they are UTF-8 without NULs, else None (store as base64)."""
    if b"\x00" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _decoded_size(stored: int, last_line: str) -> int:
    """Bytes behind a file of MIME base64 (76-character lines, each ending in a newline).

    From the file's size and its last line alone, so listing never reads a file whole.
    """
    if not last_line:
        return 0
    full_lines = (stored - len(last_line) - 1) // (BASE64_LINE + 1)
    characters = full_lines * BASE64_LINE + len(last_line)
    return characters // 4 * 3 - last_line.count("=")


def _unused(name: str, taken: set[str]) -> str:
    """`name`, or `stem (2).ext`, `stem (3).ext`... whichever is free."""
    if name not in taken:
        return name
    stem, dot, extension = name.partition(".")
    n = 2
    while f"{stem} ({n}){dot}{extension}" in taken:
        n += 1
    return f"{stem} ({n}){dot}{extension}"


def _field(info: str, key: str) -> str | None:
    match = re.search(rf"^{key}: (.*)$", info, re.MULTILINE)
    return match.group(1).strip() if match else None
