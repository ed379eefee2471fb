"""DeltaTask mirror of every task: the primary external store, idempotent by task uid."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from core.errors import ToolFailed
from core.models import (
    DEFAULT_PRIORITY,
    MAX_PRIORITY,
    Change,
    Operation,
    RemotePage,
    RemoteTask,
    Task,
    TaskStatus,
)
from integrations.mcp.integration import McpIntegration
from integrations.mcp.launch import Launch, python_module

#: How the server words a lookup that found nothing; anything else is a real failure.
_NO_SUCH_REF = "No task with external_ref"
_NOT_FOUND = "Task not found"
PULL_PAGE = 500  # changes read per call by the sync job; bounds one reply's size


def urgency_of(priority: int) -> int:
    """DeltaTask urgency runs the other way: 5 is most urgent, our priority 1 is."""
    return MAX_PRIORITY + 1 - priority


def priority_of(urgency: int) -> int:
    """Our priority for a DeltaTask urgency (the same mapping, read backwards)."""
    return min(MAX_PRIORITY, max(1, MAX_PRIORITY + 1 - urgency))


class DeltaTaskIntegration(McpIntegration):
    """Creates, updates, finishes and deletes the task's twin, found again by `external_ref`."""

    name = "deltatask"
    probe_tool = ("get_statistics", {})

    def _launch(self) -> Launch:
        return python_module(
            "integrations.servers.deltatask", env={"DELTATASK_HOME": str(self.state_dir)}
        )

    async def _apply(self, change: Change) -> str | None:
        task = change.task
        if change.op is Operation.CREATE:
            return await self._create(task)
        task_id = change.external_id or await self.find_by_ref(task.uid)
        try:
            return await self._write(change, task_id)
        except ToolFailed as exc:
            if task_id is None or not str(exc.args[0]).startswith(_NOT_FOUND):
                raise
        # Our link names a copy someone deleted there; look again by uid.
        return await self._write(change, await self.find_by_ref(task.uid))

    async def _write(self, change: Change, task_id: str | None) -> str | None:
        task = change.task
        if task_id is None:
            if change.op is Operation.DELETE:
                return None  # never created or already deleted: nothing left to do
            # Deleted there, changed here later: the newer change wins, so the copy returns.
            task_id = await self._create(task)
        # The key makes a replay of this exact change a no-op on the server.
        key = f"{task.uid}:{change.op.value}:{task.version}"
        if change.op is Operation.UPDATE:
            updates = _fields(task)
            await self._call(
                "update_task", {"task_id": task_id, "updates": updates, "idempotency_key": key}
            )
        elif change.op is Operation.COMPLETE:
            await self._call("finish_task", {"task_id": task_id, "idempotency_key": key})
        else:
            await self._delete(task.uid, task_id, key)
        return task_id

    async def _create(self, task: Task) -> str:
        created = await self._call_dict("create_task", _create_arguments(task))
        return str(created["id"])

    async def _erase(self, change: Change, external_id: str | None) -> None:
        task_id = external_id or await self.find_by_ref(change.task.uid)
        if task_id is not None:
            await self._delete(change.task.uid, task_id, f"{change.task.uid}:undo")

    async def locate(self, uid: str, external_id: str | None) -> str | None:
        """`task <id> (open): <title>` as the server holds it, or None."""
        task_id = external_id or await self.find_by_ref(uid)
        if task_id is None:
            return None
        try:
            task = await self.get_task(task_id)
        except ToolFailed:
            return None  # deleted since the link was made
        state = "done" if task.get("completed") else "open"
        return f"task {task_id} ({state}): {task.get('title')}"

    async def find_by_ref(self, uid: str) -> str | None:
        """The server's id for the task created with this uid, or None."""
        try:
            found = await self._call_dict("find_by_ref", {"external_ref": uid})
        except ToolFailed as exc:
            if str(exc.args[0]).startswith(_NO_SUCH_REF):
                return None
            raise
        return str(found["id"])

    async def _delete(self, uid: str, task_id: str, key: str) -> None:
        try:
            await self._call("delete_task", {"task_id": task_id, "idempotency_key": key})
        except ToolFailed:
            if await self.find_by_ref(uid) is not None:
                raise  # still there: a real failure
            # gone already (deleted earlier under another key): the goal is reached

    async def pull(self, cursor: str | None) -> RemotePage:
        """Tasks changed on the server since `cursor`, ours only (found by external_ref).

        Our server logs every write and delete with a revision number (`list_changes`); a
        plain DeltaTask has no such log, so every task is read and deletions go unseen.
        """
        if "list_changes" not in self.handle.tools:
            # LIMIT: without list_changes every sync reads the whole store and a task
            # deleted in DeltaTask stays here; fine for a personal store, slow for a big one.
            items = await self.list_tasks(include_completed=True)
            found = (_remote(item) for item in _flatten(items))
            return RemotePage(tuple(t for t in found if t is not None), cursor=None)
        page = await self._call_dict(
            "list_changes", {"after": int(cursor or 0), "limit": PULL_PAGE}
        )
        written = (_remote(item) for item in page.get("tasks") or ())
        buried = (_buried(item) for item in page.get("deleted") or ())
        tasks = tuple(t for t in (*written, *buried) if t is not None)
        return RemotePage(tasks, cursor=str(page["last"]), more=bool(page.get("more")))

    # -- the convenience API of the specification -------------------------------------

    async def create_task(
        self,
        title: str,
        description: str = "",
        *,
        priority: int = DEFAULT_PRIORITY,
        tags: Sequence[str] = (),
        deadline: str | None = None,
        effort: int = 1,
        external_ref: str | None = None,
    ) -> dict[str, Any]:
        """Create a task directly (no local store involved); returns `{"id", "message"}`."""
        arguments: dict[str, Any] = {
            "title": title,
            "description": description,
            "urgency": urgency_of(priority),
            "effort": effort,
            "tags": list(tags),
            "deadline": deadline,
        }
        if external_ref is not None:
            arguments["external_ref"] = external_ref
        return await self._call_dict("create_task", arguments)

    async def get_task(self, task_id: str) -> dict[str, Any]:
        return await self._call_dict("get_task_by_id", {"task_id": task_id})

    async def list_tasks(
        self,
        tags: Sequence[str] | None = None,
        *,
        include_completed: bool = False,
    ) -> list[dict[str, Any]]:
        arguments: dict[str, Any] = {"include_completed": include_completed}
        if tags:
            arguments["tags"] = list(tags)
        return await self._call_list("list_tasks", arguments)

    async def finish_task(self, task_id: str) -> dict[str, Any]:
        return await self._call_dict("finish_task", {"task_id": task_id})

    async def delete_task(self, task_id: str) -> dict[str, Any]:
        return await self._call_dict("delete_task", {"task_id": task_id})


def _create_arguments(task: Task) -> dict[str, Any]:
    return {
        "title": task.title,
        "description": task.description,
        "urgency": urgency_of(task.priority),
        "tags": list(task.tags),
        "deadline": task.deadline.isoformat() if task.deadline else None,
        "external_ref": task.uid,
    }


def _fields(task: Task) -> dict[str, Any]:
    """Everything an update carries, done-ness too: a reopened task reopens its twin."""
    fields = _create_arguments(task)
    del fields["external_ref"]
    return fields | {"completed": task.status is TaskStatus.DONE}


def _remote(item: Mapping[str, Any]) -> RemoteTask | None:
    """One task of the server as the sync job compares it; None if it is not one of ours."""
    ref = item.get("external_ref")
    if not ref:
        return None
    return RemoteTask(
        uid=str(ref),
        external_id=str(item["id"]),
        updated_at=_instant(item.get("updated")),
        title=str(item.get("title") or ""),
        description=str(item.get("description") or ""),
        priority=priority_of(int(item.get("urgency") or 1)),
        deadline=item.get("deadline") or None,
        tags=tuple(str(tag) for tag in item.get("tags") or ()),
        done=bool(item.get("completed")),
    )


def _buried(item: Mapping[str, Any]) -> RemoteTask | None:
    ref = item.get("external_ref")
    if not ref:
        return None
    return RemoteTask(
        uid=str(ref),
        external_id=str(item["id"]),
        updated_at=_instant(item.get("deleted")),
        deleted=True,
    )


def _instant(value: object) -> datetime | None:
    """The server's stamp as an aware instant; None (never newer than ours) if unreadable."""
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _flatten(items: Sequence[Mapping[str, Any]]) -> Iterator[Mapping[str, Any]]:
    for item in items:
        yield item
        yield from _flatten(item.get("subtasks") or ())
