"""Knowledge-graph mirror on @modelcontextprotocol/server-memory: tasks, tags, people.

A task is the entity `task:<uid>` whose observations are `key: value` lines (title,
priority, deadline, status...); it is `tagged_with` each `tag:<name>` and `assigned_to` its
`person:<name>`. `create_entities` ignores names that already exist, so every apply is an
upsert: create (a no-op on replay), then bring observations and relations in line.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from core.models import Change, Operation, Task
from core.settings import ServerConfig
from integrations.markdown import one_line_title
from integrations.mcp.batching import GroupCall
from integrations.mcp.integration import McpIntegration, snapshot
from integrations.mcp.launch import Launch, node_server

TAGGED = "tagged_with"
ASSIGNED = "assigned_to"
#: Observation keys this integration owns on a task entity; others are left alone.
_KEYS = ("id", "title", "priority", "deadline", "status", "description")
#: Characters kept of a description in one observation.
DESCRIPTION_CHARS = 500


def task_entity(uid: str) -> str:
    return f"task:{uid}"


def observations(task: Task) -> list[str]:
    """The task as observation lines, one per owned key."""
    lines = {
        "id": str(task.id),
        "title": one_line_title(task.title, limit=len(task.title) + 1),
        "priority": str(task.priority),
        "deadline": task.deadline.isoformat() if task.deadline else "none",
        "status": task.status.value,
        "description": one_line_title(task.description, DESCRIPTION_CHARS)
        if task.description.strip()
        else "",
    }
    return [f"{key}: {value}" for key, value in lines.items() if value]


def _targets(task: Task) -> set[tuple[str, str]]:
    wanted = {(f"tag:{tag}", TAGGED) for tag in task.tags}
    if task.assignee:
        wanted.add((f"person:{task.assignee}", ASSIGNED))
    return wanted


class MemoryIntegration(McpIntegration):
    """Keeps the task's entity, its tags and its assignee in the knowledge graph."""

    name = "memory"
    probe_tool = ("search_nodes", {"query": "taskbot-health-probe"})

    def __init__(self, config: ServerConfig | None = None, data_dir: Path | None = None) -> None:
        super().__init__(config, data_dir)
        # The server rewrites its whole JSONL file per mutation (read, change, write);
        # overlapping mutations from us would lose one another's changes.
        self._lock = asyncio.Lock()
        # A burst of changes becomes one create_entities call: the server rewrites its whole
        # file per mutation, so one write for fifty tasks costs what one write for one does.
        self._group: GroupCall[Task] = GroupCall(self._upsert_batch)

    def _launch(self) -> Launch:
        path = self.state_dir / "memory.jsonl"
        return node_server("mcp-server-memory", env={"MEMORY_FILE_PATH": str(path)})

    async def _apply(self, change: Change) -> str | None:
        name = task_entity(change.task.uid)
        if change.op is Operation.DELETE:
            async with self._lock:
                await self._call("delete_entities", {"entityNames": [name]})
        else:
            await self._group.submit(snapshot(change))
        return name

    async def _erase(self, change: Change, external_id: str | None) -> None:
        async with self._lock:
            name = external_id or task_entity(change.task.uid)
            await self._call("delete_entities", {"entityNames": [name]})

    async def locate(self, uid: str, external_id: str | None) -> str | None:
        """`entity task:<uid> (N observations, M neighbours)`, or None."""
        entity = await self.entity(uid)
        if entity is None:
            return None
        facts, links = len(entity.get("observations", [])), len(await self.related(uid))
        return f"entity {entity['name']} ({facts} observations, {links} neighbours)"

    async def related(self, uid: str) -> list[str]:
        """Names of the entities one relation away from the task (tags, people...)."""
        name = task_entity(uid)
        graph = await self._call_dict("open_nodes", {"names": [name]})
        neighbours = set()
        for relation in graph.get("relations", []):
            if relation.get("from") == name:
                neighbours.add(str(relation.get("to")))
            elif relation.get("to") == name:
                neighbours.add(str(relation.get("from")))
        return sorted(neighbours)

    async def neighbour_tasks(self, uid: str) -> dict[str, list[str]]:
        """For each tag or person the task links to, the uids of the other tasks linked to it."""
        own = task_entity(uid)
        shared = await self.related(uid)
        if not shared:
            return {}
        graph = await self._call_dict("open_nodes", {"names": shared})
        found: dict[str, set[str]] = {name: set() for name in shared}
        for relation in graph.get("relations", []):
            start, end = str(relation.get("from")), str(relation.get("to"))
            if end in found and start.startswith("task:") and start != own:
                found[end].add(start.removeprefix("task:"))
        return {name: sorted(uids) for name, uids in found.items()}

    async def entity(self, uid: str) -> dict[str, Any] | None:
        """The task's entity as the server holds it, or None."""
        graph = await self._call_dict("open_nodes", {"names": [task_entity(uid)]})
        entities = graph.get("entities", [])
        return dict(entities[0]) if entities else None

    async def _upsert_batch(self, tasks: list[Task]) -> None:
        """Create what is new in one call each for entities and links; reconcile the rest."""
        entities = [
            {"name": task_entity(t.uid), "entityType": "task", "observations": observations(t)}
            for t in tasks
        ]
        async with self._lock:
            created = await self._call_dict("create_entities", {"entities": entities})
            fresh = {str(item.get("name")) for item in created.get("entities", [])}
            new = [t for t in tasks if task_entity(t.uid) in fresh]
            await self._link_all([(task_entity(t.uid), _targets(t)) for t in new])
            for task in tasks:
                if task_entity(task.uid) not in fresh:
                    await self._reconcile(task)

    async def _reconcile(self, task: Task) -> None:
        """Bring an entity that already existed in line with the task (update, replay)."""
        name = task_entity(task.uid)
        graph = await self._call_dict("open_nodes", {"names": [name]})
        await self._sync_observations(name, observations(task), graph)
        have_links = {
            (str(r["to"]), str(r["relationType"]))
            for r in graph.get("relations", [])
            if r.get("from") == name and r.get("relationType") in (TAGGED, ASSIGNED)
        }
        await self._sync_links(name, _targets(task), have_links)

    async def _link_all(self, wanted: list[tuple[str, set[tuple[str, str]]]]) -> None:
        """Tag and person entities plus relations for fresh tasks, in two calls in all."""
        ends: dict[str, dict[str, Any]] = {}
        links: list[dict[str, Any]] = []
        for name, targets in wanted:
            for to, kind in sorted(targets):
                kind_name = "tag" if kind == TAGGED else "person"
                ends[to] = {"name": to, "entityType": kind_name, "observations": []}
                links.append({"from": name, "to": to, "relationType": kind})
        if ends:
            await self._call("create_entities", {"entities": list(ends.values())})
        if links:
            await self._call("create_relations", {"relations": links})

    async def _sync_observations(self, name: str, wanted: list[str], graph: dict[str, Any]) -> None:
        entities = graph.get("entities", [])
        have = [str(o) for o in entities[0].get("observations", [])] if entities else []
        owned = tuple(f"{key}: " for key in _KEYS)
        stale = [o for o in have if o.startswith(owned) and o not in wanted]
        missing = [o for o in wanted if o not in have]
        if stale:
            deletion = {"entityName": name, "observations": stale}
            await self._call("delete_observations", {"deletions": [deletion]})
        if missing:
            addition = {"entityName": name, "contents": missing}
            await self._call("add_observations", {"observations": [addition]})

    async def _sync_links(
        self,
        name: str,
        wanted: set[tuple[str, str]],
        have: set[tuple[str, str]],
    ) -> None:
        stale = [{"from": name, "to": to, "relationType": kind} for to, kind in have - wanted]
        if stale:
            await self._call("delete_relations", {"relations": stale})
        await self._link_all([(name, wanted - have)])
