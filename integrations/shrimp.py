"""Planning copy of each task in mcp-shrimp-task-manager, and the `/split` of a task into steps.

Shrimp answers in Markdown written for an agent, partly in English, partly in Chinese, and its
wording changes between releases, so nothing here reads prose. A task's name ends with
`[<uid>]`; a query for the uid finds it. Every reply is cut into `### ` blocks: the first UUID
after a block's `[<uid>]` mark (or after its heading, for tasks we did not make) is the task's
id, the other known ids in the block are its dependencies, and a line ending in one of the
status values (`pending`, `in_progress`, `completed`) gives its status. Descriptions go out on
one line, so user text can never open a block of its own.

Shrimp rewrites its whole `tasks.json` on every change and refuses to change a completed task;
one lock serialises every sequence of calls, and the rules below follow from the refusals:
- completing a step whose prerequisites are still open drops those prerequisites (the user
  finished it anyway), so a completed task never depends on an open one;
- deleting a step first points its dependents at the step's own prerequisites (A -> X -> B
  becomes A -> B), since shrimp refuses to delete a task others depend on.
LIMIT: a completed task cannot be renamed or deleted in shrimp, so it stays in the plan as
finished after taskbot deletes it; a `delete_task` that accepted completed tasks would fix it.
LIMIT: `query_task` also greps shrimp's backups of cleared lists; we never clear the list, but
an operator who does could make a uid match a task that no longer exists.

Creates are grouped (`GroupCall`): every shrimp call reads and rewrites the whole tasks.json,
so it costs time in proportion to the plan, not to the tasks it carries. Creates that arrive
while one group runs share one existence check (a query per uid for a few, one `list_tasks`
for more: a list costs about three queries) and one `split_tasks` append, whose reply names
the new tasks with their ids. An entry shrimp refuses would take its whole call down with it,
so tasks the reply lacks are retried one by one: each failure stays with its own change.
LIMIT: every call still costs O(plan size) inside shrimp (a 3,000-task plan: ~25 ms per query,
~55-85 ms per split), so a group's cost grows with the plan; only a server that kept its tasks
in an indexed store instead of one JSON file would lift it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from core.errors import ServerUnavailable, ToolFailed
from core.models import Change, Operation, Task
from core.settings import ServerConfig
from integrations.markdown import one_line_title
from integrations.mcp.batching import GroupCall
from integrations.mcp.integration import McpIntegration, snapshot
from integrations.mcp.launch import Launch, node_server

#: Shrimp refuses a task name longer than this.
NAME_CHARS = 100
#: Characters of a title kept in a shrimp task name, the uid mark taking the rest.
NAME_TITLE_CHARS = 60
#: Characters of a description sent to shrimp.
DESCRIPTION_CHARS = 1000
#: Matches a query may return per page (shrimp's own maximum).
QUERY_PAGE = 20
#: Creates carried by one `split_tasks` call: its reply (~500 characters a task) and the
#: rewrite of tasks.json stay small beside a 15 s timeout even on a plan of thousands.
CREATE_BATCH = 50
#: From this many uids on, one `list_tasks` finds them cheaper than a query per uid.
LIST_FROM = 4
#: Shrimp closes a task on `verify_task` with a score of at least 80.
DONE_SCORE = 100
DONE_SUMMARY = "Marked done in taskbot; the user finished this step, nothing is left to check."
GUIDE = "Tracked in taskbot: mark the task done there and this plan follows."

IN_PROGRESS, COMPLETED = "in_progress", "completed"
_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE)
_MARK = re.compile(r"\[([\w.:-]{1,64})\]")  # the last one in a heading is the uid
_STATUS = re.compile(r"^.*?:[\s*`]*(pending|in_progress|completed|blocked)[\s*`]*$", re.MULTILINE)


@dataclass(frozen=True, slots=True)
class PlanItem:
    """One shrimp task as a reply shows it; `uid` is taskbot's, when the name carries one."""

    id: str
    name: str
    uid: str | None
    dependencies: tuple[str, ...] = ()
    status: str | None = None


def task_name(task: Task) -> str:
    """`<title> [<uid>]`: readable in shrimp, and found again by the uid."""
    budget = min(NAME_TITLE_CHARS, max(NAME_CHARS - len(task.uid) - 3, 10))
    cut = budget
    title = one_line_title(task.title, cut)
    # Shrimp counts JavaScript string length, UTF-16 units: an emoji counts twice, and a
    # name past its limit is refused, so the title is clipped until it fits in units.
    while _js_length(title) > budget:
        cut -= 1
        title = one_line_title(task.title, cut)
    return f"{title} [{task.uid}]"


def _js_length(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def task_description(task: Task) -> str:
    """One line (shrimp wants at least ten characters): the task's number, tags and text."""
    parts = [f"taskbot task #{task.id}"]
    if task.tags:
        parts.append(" ".join(f"#{tag}" for tag in task.tags))
    if task.description.strip():
        parts.append(task.description)
    return one_line_title(" · ".join(parts), DESCRIPTION_CHARS)


def parse_items(reply: str) -> list[PlanItem]:
    """Every task block of a reply, in order; dependencies limited to ids the reply names."""
    items: list[PlanItem] = []
    for block in re.split(r"^(?=### )", reply, flags=re.MULTILINE):
        if not block.startswith("### "):
            continue
        heading, _, _ = block.partition("\n")
        mark = next(reversed(list(_MARK.finditer(heading))), None)
        start = mark.end() if mark else len(heading)
        ids = list(dict.fromkeys(m.group(0).lower() for m in _UUID.finditer(block, start)))
        if not ids:
            continue
        status = _STATUS.search(block, len(heading))
        name = heading[4 : mark.start() if mark else None].strip()
        uid = mark.group(1) if mark else None
        items.append(PlanItem(ids[0], name, uid, tuple(ids[1:]), status and status.group(1)))
    known = {item.id for item in items}
    return [replace(i, dependencies=tuple(d for d in i.dependencies if d in known)) for i in items]


log = logging.getLogger("taskbot.shrimp")
TASKS_FILE = "tasks.json"  # shrimp's whole plan, in its DATA_DIR (our state dir)
GOOD_COPY = "tasks.json.last-good"
#: Tools that never write tasks.json: no copy is taken after them.
_READ_ONLY = frozenset({"query_task", "list_tasks", "get_task_detail", "plan_task"})


class ShrimpIntegration(McpIntegration):
    """Keeps a planning copy of each task and splits a task into a chain of dependent steps."""

    name = "shrimp-task-manager"
    probe_tool = ("query_task", {"query": "taskbot-health-probe", "pageSize": 1})

    def __init__(self, config: ServerConfig | None = None, data_dir: Path | None = None) -> None:
        super().__init__(config, data_dir)
        # Shrimp reads and rewrites tasks.json whole per call: overlapping sequences of ours
        # would lose one another's writes or act on a stale status.
        self._lock = asyncio.Lock()
        self._creates: GroupCall[Task, str] = GroupCall(self._create_batch, max_items=CREATE_BATCH)

    def _launch(self) -> Launch:
        env = {"DATA_DIR": str(self.state_dir), "TEMPLATES_USE": "en", "ENABLE_GUI": "false"}
        return replace(node_server("mcp-shrimp-task-manager", env=env), cwd=self.state_dir)

    # -- shrimp's tasks.json survives a crash mid-write ---------------------------------------
    # Shrimp rewrites tasks.json in place (truncate, then write): killed in between, it leaves
    # a cut-off file and every later call fails ("Unexpected end of JSON input"), taking the
    # whole plan with it. After each call that changed the plan we keep a copy of the file;
    # a failure with a cut-off file puts that copy back (the state before the write that
    # crashed, whose changes were never acknowledged) and counts as unavailable, so the
    # orchestrator retries instead of giving the changes up.

    async def _prepare(self) -> None:
        await super()._prepare()
        await asyncio.to_thread(self._repair_plan)  # a crash in an earlier run

    async def _call(self, tool: str, arguments: Mapping[str, Any] | None = None) -> object:
        try:
            value = await super()._call(tool, arguments)
        except ToolFailed as exc:
            if await asyncio.to_thread(self._repair_plan):
                raise ServerUnavailable(
                    "tasks.json was cut short by a crash; restored the last good copy",
                    server=self.name,
                    tool=tool,
                ) from exc
            raise
        if tool not in _READ_ONLY:
            await asyncio.to_thread(self._keep_good_copy)
        return value

    def _keep_good_copy(self) -> None:
        plan = self.state_dir / TASKS_FILE
        try:
            data = plan.read_bytes()
            json.loads(data)
        except (OSError, ValueError):
            return  # nothing whole to keep
        spare = plan.with_name(GOOD_COPY + ".tmp")
        spare.write_bytes(data)
        os.replace(spare, plan.with_name(GOOD_COPY))

    def _repair_plan(self) -> bool:
        """Put the last good copy back if tasks.json is cut short; whether it did."""
        plan = self.state_dir / TASKS_FILE
        try:
            json.loads(plan.read_bytes())
        except FileNotFoundError:
            return False
        except (OSError, ValueError):
            good = plan.with_name(GOOD_COPY)
            spare = plan.with_name(TASKS_FILE + ".restore")
            spare.write_bytes(good.read_bytes() if good.exists() else b'{"tasks": []}')
            os.replace(spare, plan)
            log.error("shrimp.plan_restored", extra={"server": self.name, "copy": good.exists()})
            return True
        return False

    async def _apply(self, change: Change) -> str | None:
        task = snapshot(change)
        if change.op is Operation.CREATE:
            return await self._creates.submit(task)
        async with self._lock:
            if change.op is Operation.DELETE:
                await self._remove(task.uid)
                return None
            item = await self._ensure(task)
            if change.op is Operation.UPDATE and item.status != COMPLETED:
                arguments = {"name": task_name(task), "description": task_description(task)}
                await self._call("update_task", {"taskId": item.id, **arguments})
            elif change.op is Operation.COMPLETE:
                await self._complete(item)
            return item.id

    async def _erase(self, change: Change, external_id: str | None) -> None:
        async with self._lock:
            await self._remove(change.task.uid)

    async def locate(self, uid: str, external_id: str | None) -> str | None:
        """`plan task <uuid> (<status>): <name>`, or None when shrimp holds no copy."""
        found = await self.find(uid)
        if not found:
            return None
        return f"plan task {found[0].id} ({found[0].status or 'unknown'}): {found[0].name}"

    async def find(self, uid: str) -> list[PlanItem]:
        """Shrimp's copies of the task with this uid: one, or none (more only after a fault)."""
        arguments = {"query": uid, "pageSize": QUERY_PAGE}
        reply = await self._call_text("query_task", arguments)
        return [item for item in parse_items(reply) if item.uid == uid]

    async def plan(self) -> list[PlanItem]:
        """Every task shrimp holds, with its dependencies (no status: the list shows none)."""
        return parse_items(await self._call_text("list_tasks", {"status": "all"}))

    async def split(self, parent: Task, steps: Sequence[Task]) -> list[str]:
        """Plan `steps` as a chain (each waits for the one before) that the parent waits for.

        Returns the steps' shrimp ids in order. Steps a fan-out already copied are linked in
        place; the rest are created by one `split_tasks` call.
        """
        async with self._lock:
            parent_item = await self._ensure(parent)
            have = {step.uid: await self._one(step.uid) for step in steps}
            copied = {uid: item for uid, item in have.items() if item is not None}
            if len(copied) < len(steps):
                await self._split_missing(steps, have)
            ids = [self._must(have[step.uid], step.uid).id for step in steps]
            plan = {item.id: item for item in await self.plan()}
            for before, step, step_id in zip([None, *ids], steps, ids, strict=False):
                wanted = (before,) if before else ()
                early = copied.get(step.uid)
                if early is None or early.status == COMPLETED:
                    continue  # made just now with its link, or finished and frozen
                if plan[step_id].dependencies != wanted:
                    await self._set_dependencies(step_id, list(wanted))
            current = plan[parent_item.id].dependencies
            if ids and parent_item.status != COMPLETED and ids[-1] not in current:
                await self._set_dependencies(parent_item.id, [*current, ids[-1]])
            return ids

    # -- the steps of one change, always under the lock --------------------------------------

    async def _create_batch(self, tasks: list[Task]) -> list[str | Exception]:
        """Copy the tasks shrimp lacks in one append; each task's shrimp id, or its failure."""
        async with self._lock:
            found = await self._lookup([task.uid for task in tasks])
            missing = list({t.uid: t for t in tasks if t.uid not in found}.values())
            if missing:
                reply = await self._call_split([_entry(task) for task in missing])
                found |= _by_uid(parse_items(reply), {task.uid for task in missing})
            outcomes: list[str | Exception] = []
            for task in tasks:
                if task.uid not in found:  # refused within the group: alone, it fails alone
                    try:
                        found[task.uid] = await self._ensure(task)
                    except ToolFailed as exc:
                        outcomes.append(exc)
                        continue
                outcomes.append(found[task.uid].id)
            return outcomes

    async def _lookup(self, uids: list[str]) -> dict[str, PlanItem]:
        """The copies shrimp holds of these uids (the first, should a fault have made two)."""
        wanted = set(uids)
        if len(wanted) < LIST_FROM:
            found = {uid: await self._one(uid) for uid in wanted}
            return {uid: item for uid, item in found.items() if item is not None}
        return _by_uid(await self.plan(), wanted)

    async def _ensure(self, task: Task) -> PlanItem:
        """The task's copy, created (alone, appended to the plan) when shrimp has none."""
        found = await self._one(task.uid)
        if found is not None:
            return found
        reply = await self._call_split([_entry(task)])
        made = _by_uid(parse_items(reply), {task.uid}).get(task.uid)
        return made or self._must(await self._one(task.uid), task.uid)

    async def _split_missing(self, steps: Sequence[Task], have: dict[str, PlanItem | None]) -> None:
        entries: list[dict[str, Any]] = []
        for index, step in enumerate(steps):
            if have[step.uid] is not None:
                continue
            entry = _entry(step)
            if index:
                before = steps[index - 1]
                known = have[before.uid]
                entry["dependencies"] = [known.id if known else task_name(before)]
            entries.append(entry)
        await self._call_split(entries)
        for step in steps:
            if have[step.uid] is None:
                have[step.uid] = await self._one(step.uid)

    async def _call_split(self, entries: list[dict[str, Any]]) -> str:
        """Append the entries; the reply lists the tasks made, each with its new id.

        Shrimp reports bad input as plain text, not as an error: a task missing from the
        reply was refused (callers look it up to be sure).
        """
        arguments = {"updateMode": "append", "tasksRaw": json.dumps(entries, ensure_ascii=False)}
        return await self._call_text("split_tasks", arguments)

    async def _complete(self, item: PlanItem) -> None:
        if item.status == COMPLETED:
            return
        if item.status != IN_PROGRESS:
            await self._call_text("execute_task", {"taskId": item.id})
            item = self._must(await self._one(item.uid), item.uid)
        if item.status != IN_PROGRESS:
            # Blocked by open prerequisites: the user finished it anyway.
            await self._set_dependencies(item.id, [])
            await self._call_text("execute_task", {"taskId": item.id})
        arguments = {"taskId": item.id, "summary": DONE_SUMMARY, "score": DONE_SCORE}
        await self._call_text("verify_task", arguments)

    async def _remove(self, uid: str) -> None:
        found = await self.find(uid)
        removable = [item for item in found if item.status != COMPLETED]
        if not removable:
            return  # never copied, deleted before, or completed (see the module's LIMIT)
        plan = await self.plan()
        for item in removable:
            own = next((p.dependencies for p in plan if p.id == item.id), ())
            for dependent in (p for p in plan if item.id in p.dependencies):
                rewired = [d for d in dependent.dependencies if d != item.id]
                rewired += [d for d in own if d not in rewired and d != dependent.id]
                await self._set_dependencies(dependent.id, rewired)
            await self._call_text("delete_task", {"taskId": item.id})

    async def _set_dependencies(self, task_id: str, ids: list[str]) -> None:
        await self._call_text("update_task", {"taskId": task_id, "dependencies": ids})

    async def _one(self, uid: str | None) -> PlanItem | None:
        found = await self.find(uid) if uid else []
        return found[0] if found else None

    def _must(self, item: PlanItem | None, uid: str | None) -> PlanItem:
        """The copy a create just made; its absence means shrimp refused the input."""
        if item is None:
            raise ToolFailed(f"shrimp holds no task for uid {uid}", server=self.name)
        return item


def _by_uid(items: list[PlanItem], wanted: set[str]) -> dict[str, PlanItem]:
    """The first item for each wanted uid, as `find` would pick it."""
    found: dict[str, PlanItem] = {}
    for item in items:
        if item.uid in wanted and item.uid not in found:
            found[item.uid] = item
    return found


def _entry(task: Task) -> dict[str, Any]:
    return {
        "name": task_name(task),
        "description": task_description(task),
        "implementationGuide": GUIDE,
    }
