"""Semantic memory of every task on an hpkv-memory server, so `/search` can go by meaning.

A task is one memory: its title, description and tags as the content, `{task_uid, chat_id,
status}` as metadata, the chat id as the session (a search stays inside one chat). The server keeps
one memory per `metadata.task_uid` and hands back the same key for a repeated store, so
create, update and completion are all one idempotent `store_memory`; the key is the external
id. Delete and undo remove the memory. By default the project's own server runs over stdio;
`"transport": "http"` with a `url` and `api_key_env` points the same code at a remote one.
Stores that arrive while one is running go together in one `store_memories` call (our
server's batch tool: one transaction, one model run for many texts, where each separate store
pays a model run of its own). A server without that tool, such as the hosted HPKV, gets one
`store_memory` per change, as the tool list it announced at start-up says.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from core.errors import ToolFailed
from core.models import Change, Operation, Task
from core.settings import ServerConfig
from integrations.mcp.batching import GroupCall
from integrations.mcp.integration import McpIntegration, snapshot
from integrations.mcp.launch import Launch, python_module

#: The memories' project: every taskbot memory lives in it, apart from anything else stored.
PROJECT = "taskbot"
#: Candidates a search asks the server for, before the two cuts below.
SEARCH_TOP = 5
#: Below this cosine score a hit is noise. Measured with the bundled MiniLM on short task
#: titles: gibberish and unrelated words top out at 0.12-0.19, real matches score 0.26-0.80.
MIN_SCORE = 0.22
#: A hit this far below the best one is a different subject ("plumbing": the plumber task
#: 0.58, the next 0.24); hits within it are shown together ("pay the flat": 0.26 and 0.26).
# LIMIT: both are calibrated for the bundled model; a hosted HPKV with another model scores
# on its own scale and may need other values (they would belong in the server's config).
CLOSE_TO_BEST = 0.12
#: The batch tool, and the most memories one call of it carries (our server takes up to 256):
#: a call of 64 embeds in well under a second, far inside the 10 s timeout.
BATCH_TOOL = "store_memories"
BATCH_ITEMS = 64


@dataclass(frozen=True, slots=True)
class MemoryHit:
    """One search result: whose memory it is and how close it came (0..1)."""

    task_uid: str
    chat_id: int | None
    score: float


def relevant(hits: list[MemoryHit]) -> list[MemoryHit]:
    """The hits worth showing, best first: above the noise and near the best one."""
    ranked = sorted(hits, key=lambda hit: hit.score, reverse=True)
    if not ranked:
        return []
    floor = max(MIN_SCORE, ranked[0].score - CLOSE_TO_BEST)
    return [hit for hit in ranked if hit.score >= floor]


def memory_content(task: Task) -> str:
    """What the model reads: title, description and tags, one per line."""
    lines = [task.title]
    if task.description.strip():
        lines.append(task.description.strip())
    if task.tags:
        lines.append(" ".join(f"#{tag}" for tag in task.tags))
    return "\n".join(lines)


class SemanticMemoryIntegration(McpIntegration):
    """Stores each task as a memory, removes it with the task, searches by meaning."""

    name = "hpkv-memory"
    # Cheap and model-free on our server; a hosted HPKV without get_stats would need another.
    probe_tool = ("get_stats", {})

    def __init__(self, config: ServerConfig | None = None, data_dir: Path | None = None) -> None:
        super().__init__(config, data_dir)
        self._stores: GroupCall[Task, str] = GroupCall(self._store_batch, max_items=BATCH_ITEMS)

    def _launch(self) -> Launch:
        return python_module(
            "integrations.servers.semantic_memory",
            env={"SEMANTIC_MEMORY_HOME": str(self.state_dir)},
        )

    async def _apply(self, change: Change) -> str | None:
        if change.op is Operation.DELETE:
            await self._forget(change.task, change.external_id)
            return None
        task = snapshot(change)
        # The tool list is the one the server announced at its latest start: a server swapped
        # for one without the batch tool is taken at its word from its next start on.
        if BATCH_TOOL in self.handle.tools:
            return await self._stores.submit(task)
        return await self._store(task)

    async def _erase(self, change: Change, external_id: str | None) -> None:
        await self._forget(change.task, external_id)

    async def locate(self, uid: str, external_id: str | None) -> str | None:
        """`memory <key> (<n> characters)`, or None once it is gone.

        LIMIT: without the key (no link recorded) the memory cannot be looked up, since the
        server searches by meaning only; a metadata filter on `search_memory` would allow it.
        """
        if external_id is None:
            return None
        memory = await self._get(external_id)
        if memory is None or memory.get("metadata", {}).get("task_uid") != uid:
            return None
        return f"memory {external_id} ({len(str(memory.get('content', '')))} characters)"

    async def search(self, query: str, *, chat_id: int, top: int = SEARCH_TOP) -> list[MemoryHit]:
        """The chat's memories close in meaning to `query`, best first; [] if none is."""
        arguments = {
            "query": query,
            "topK": top,
            "minScore": 0,
            "project_name": PROJECT,
            "session_name": str(chat_id),
        }
        found = await self._call_list("search_memory", arguments)
        hits = []
        for item in found:
            metadata = item.get("metadata") or {}
            if not isinstance(metadata, dict) or not metadata.get("task_uid"):
                continue  # stored by someone else: not a task
            chat = metadata.get("chat_id")
            hits.append(
                MemoryHit(
                    task_uid=str(metadata["task_uid"]),
                    chat_id=chat if isinstance(chat, int) else None,
                    score=float(item.get("score") or 0.0),
                )
            )
        return relevant(hits)

    async def _store(self, task: Task) -> str:
        stored = await self._call_dict("store_memory", _memory(task))
        return str(stored["key"])

    async def _store_batch(self, tasks: list[Task]) -> list[str | Exception]:
        """One `store_memories` call; an item the server refused fails its own change only."""
        results = await self._call_list(BATCH_TOOL, {"memories": [_memory(t) for t in tasks]})
        if len(results) != len(tasks):
            raise self._unexpected(BATCH_TOOL, f"{len(tasks)} results", results)
        return [self._key_of(result) for result in results]

    def _key_of(self, result: object) -> str | Exception:
        if isinstance(result, dict) and "key" in result:
            return str(result["key"])
        if isinstance(result, dict) and "error" in result:
            return ToolFailed(str(result["error"]), server=self.name, tool=BATCH_TOOL)
        return self._unexpected(BATCH_TOOL, "a key or an error", result)

    async def _forget(self, task: Task, key: str | None) -> None:
        # Without the key, a store finds the task's memory (or makes an empty one) by uid.
        key = key or await self._store(task)
        try:
            # No idempotency key: a key freed by a delete can be handed out again later.
            await self._call("delete_memory", {"key": key})
        except ToolFailed:
            if await self._get(key) is not None:
                raise  # still there: a real failure
            # already gone: the goal is reached

    async def _get(self, key: str) -> dict[str, Any] | None:
        try:
            return await self._call_dict("get_memory", {"key": key})
        except ToolFailed:
            return None


def _memory(task: Task) -> dict[str, Any]:
    """`store_memory`'s arguments for the task (one item of `store_memories`)."""
    return {
        "content": memory_content(task),
        "project_name": PROJECT,
        "session_name": str(task.chat_id),
        "metadata": {"task_uid": task.uid, "chat_id": task.chat_id, "status": task.status.value},
    }
