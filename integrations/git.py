"""Full history of each task: every change committed as `tasks/<uid>.md` via mcp-server-git.

The server can stage and commit but not write files, so the integration writes the file in
the work tree itself and stages and commits it through the server's tools. A replay writes
identical bytes, finds the staged diff empty and commits nothing. A removal is staged with
`git_add` of the deleted path (`git add -- <path>` records a deletion).
Changes that arrive while a commit is running are committed together in the next one (a
group commit): at 100 tasks/s one commit per task would queue behind the index lock.
LIMIT: the file is written locally, so the git server must run on this machine; an HTTP git
server elsewhere would need a write tool. LIMIT: `git_log` cannot filter by path, so
`history()` scans the last `HISTORY_SCAN` commits for the task's uid; a path filter in the
server would make it exact.
"""

from __future__ import annotations

import asyncio
import re
from pathlib import Path

import anyio

from core.errors import ServerUnavailable, ToolFailed
from core.models import Change, Operation, Task
from core.settings import ServerConfig
from integrations.markdown import one_line_title, render_task, task_path
from integrations.mcp.batching import GroupCall
from integrations.mcp.integration import McpIntegration, snapshot
from integrations.mcp.launch import Launch, python_script

#: Commits `history()` looks through (git_log has no path filter).
HISTORY_SCAN = 500
#: Characters of the title in a commit subject.
SUBJECT_TITLE_CHARS = 60
_COMMIT = re.compile(r"^Commit: ([0-9a-f]{40})$", re.MULTILINE)


def commit_message(task: Task, action: str) -> str:
    """`task 12 create: Title` plus the uid trailer `history()` looks for."""
    title = one_line_title(task.title, SUBJECT_TITLE_CHARS)
    return f"task {task.id} {action}: {title}\n\nuid: {task.uid}\n"


def batch_message(messages: list[str]) -> str:
    """One commit for several changes: a count, then each change's subject and uid trailer."""
    if len(messages) == 1:
        return messages[0]
    body = "\n".join(m.strip().replace("\n\n", "\n") for m in messages)
    return f"{len(messages)} task changes\n\n{body}\n"


Batch = list[tuple[str, str]]  # (path, commit message) per change


class GitIntegration(McpIntegration):
    """Commits each change of a task to a local repository, one file per task."""

    name = "git"

    def __init__(self, config: ServerConfig | None = None, data_dir: Path | None = None) -> None:
        super().__init__(config, data_dir)
        self._lock = asyncio.Lock()  # one index: stage-and-commit sequences must not interleave
        self._group: GroupCall[tuple[str, str]] = GroupCall(self._commit_batch)

    @property
    def repo(self) -> Path:
        return self.state_dir / "repo"

    async def probe(self) -> None:
        await self.handle.ping(self.config.timeout)
        await self._call("git_status", {"repo_path": str(self.repo)})

    def _launch(self) -> Launch:
        return python_script("mcp-server-git", "--repository", str(self.repo))

    async def _prepare(self) -> None:
        await super()._prepare()
        if (self.repo / ".git").exists():
            return
        self.repo.mkdir(parents=True, exist_ok=True)
        await self._git("init", "-q", "-b", "main")
        await self._git("config", "user.name", "taskbot")
        await self._git("config", "user.email", "taskbot@localhost")
        await self._git("config", "commit.gpgsign", "false")

    async def _apply(self, change: Change) -> str | None:
        task = snapshot(change)
        path = task_path(task.uid)
        if change.op is Operation.DELETE:
            async with self._lock:
                await self._remove(task, "delete")
            return path
        # The orchestrator runs one change of a task at a time, so no other writer of this
        # file exists while we write it; the index is only touched under the lock.
        await anyio.Path(self.repo / path).parent.mkdir(parents=True, exist_ok=True)
        await anyio.Path(self.repo / path).write_text(render_task(task), encoding="utf-8")
        await self._group.submit((path, commit_message(task, change.op.value)))
        return path

    async def _commit_batch(self, batch: Batch) -> None:
        paths = list(dict.fromkeys(path for path, _ in batch))
        async with self._lock:
            await self._commit_staged(paths, batch_message([m for _, m in batch]))

    async def _erase(self, change: Change, external_id: str | None) -> None:
        async with self._lock:
            await self._remove(change.task, "undo")

    async def locate(self, uid: str, external_id: str | None) -> str | None:
        """`tasks/<uid>.md @ <sha>, N commits` while the file exists in HEAD, else None."""
        history = await self.history(uid)
        if not history or re.search(r" (delete|undo): ", history[0][2]):
            return None
        return f"{task_path(uid)} @ {history[0][0][:10]}, {len(history)} commits"

    async def history(self, uid: str) -> list[tuple[str, str, str]]:
        """`(sha, date, subject)` of the commits that touched the task, newest first."""
        arguments = {"repo_path": str(self.repo), "max_count": HISTORY_SCAN}
        log = await self._call_text("git_log", arguments)
        entries = []
        for sha, block in _split_log(log):
            date = _field(block, "Date")
            message = block.split("Message: ", 1)[-1]
            subject = _subject_for(message, uid)
            if subject is not None:
                entries.append((sha, date, subject))
        return entries

    async def _remove(self, task: Task, action: str) -> None:
        path = task_path(task.uid)
        file = anyio.Path(self.repo / path)
        existed = await file.exists()
        if existed:
            await file.unlink()
        try:
            await self._commit_staged([path], commit_message(task, action))
        except ToolFailed:
            if existed:
                raise
            # not in the tree and git knows no such path: removed and committed before

    async def _commit_staged(self, paths: list[str], message: str) -> bool:
        """Stage the paths and commit them unless the index already matches HEAD."""
        repo = str(self.repo)
        await self._call("git_add", {"repo_path": repo, "files": paths})
        staged = await self._call_text("git_diff_staged", {"repo_path": repo})
        if not staged.partition("\n")[2].strip():
            return False  # a replay: the same content is already committed
        await self._call("git_commit", {"repo_path": repo, "message": message})
        return True

    async def _git(self, *args: str) -> None:
        """Run git locally for setup the server cannot do (it refuses a missing repository)."""
        process = await asyncio.create_subprocess_exec(
            "git",
            "-C",
            str(self.repo),
            *args,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.PIPE,
        )
        _, err = await process.communicate()
        if process.returncode != 0:
            reason = err.decode(errors="replace").strip()[-300:]
            raise ServerUnavailable(f"git {args[0]} failed: {reason}", server=self.name)


def _split_log(log: str) -> list[tuple[str, str]]:
    """`git_log` text cut into `(sha, block)` pairs."""
    marks = list(_COMMIT.finditer(log))
    ends = [m.start() for m in marks[1:]] + [len(log)]
    return [(m.group(1), log[m.end() : end]) for m, end in zip(marks, ends, strict=True)]


def _subject_for(message: str, uid: str) -> str | None:
    """The subject line of `uid`'s change in a (possibly batched) commit message."""
    lines = message.strip().splitlines()
    for index, line in enumerate(lines):
        if line.strip() == f"uid: {uid}":
            before = [s for s in lines[:index] if s.strip()]
            return before[-1].strip() if before else None
    return None


def _field(block: str, key: str) -> str:
    match = re.search(rf"^{key}: (.*)$", block, re.MULTILINE)
    return match.group(1).strip() if match else ""
