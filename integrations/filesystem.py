"""Each task as a Markdown file through @modelcontextprotocol/server-filesystem.

The server may only touch `<state>/files`; a task lives at `tasks/<uid>.md` there and a
deleted one moves to `tasks/.trash/` (the server has no delete tool, and a trash keeps the
last words of a task anyway).
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from core.models import Change, Operation
from core.settings import ServerConfig
from integrations.markdown import render_task, task_path
from integrations.mcp.integration import McpIntegration, snapshot
from integrations.mcp.launch import Launch, node_server

TRASH = "tasks/.trash"


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
