"""The orchestrator: saves a task locally, answers at once, then fans it out to the servers.

Contract:
- `create_task` (and every other change) writes the task and one outbox row per server
  in one SQLite transaction and returns; the fan-out runs in a background task.
- The fan-out goes tier by tier (server priority 1 first), servers of one tier at once,
  each call wrapped by `guarded_call` (breaker, timeout, retry). Rows of one task run
  under that task's lock, in `seq` order, so create precedes update precedes delete.
- A failed call leaves its row pending; `sync()` (the scheduler's job, the start-up
  recovery and a closing breaker) drains pending rows again.
- A required server that refuses a CREATE definitively (`ToolFailed`) stops the lower
  tiers and compensates: the task becomes FAILED, its other pending rows are cancelled
  and an UNDO row is queued for every server that already holds a copy.
- `close()` stops accepting work, lets in-flight fan-outs finish for a bounded time
  (anything unfinished stays pending in the outbox) and closes every integration.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any
from zoneinfo import ZoneInfo

from core.errors import (
    BreakerOpen,
    ConfigError,
    InputError,
    IntegrationError,
    ServerUnavailable,
    TaskNotFound,
    ToolFailed,
)
from core.health import HealthBoard
from core.integration import Integration, Pullable, discover_factory
from core.locks import KeyedLocks
from core.metrics import Metrics, percentile
from core.models import (
    DEFAULT_PRIORITY,
    MAX_DESCRIPTION,
    MAX_PRIORITY,
    MAX_TAGS,
    MAX_TITLE,
    MIN_PRIORITY,
    Change,
    Operation,
    OutboxRow,
    OutboxState,
    RemoteTask,
    ServerStatus,
    Task,
    TaskDraft,
    TaskStatus,
    new_uid,
)
from core.resilience import BreakerState, CircuitBreaker, RetryPolicy, guarded_call
from core.settings import AppConfig, ServerConfig, load_config
from core.store import SqliteTaskStore

log = logging.getLogger("taskbot.orchestrator")

CLOSE_GRACE_S = 10.0  # how long close() waits for in-flight fan-outs before leaving them queued
SYNC_BATCH = 500  # tasks per outbox read; bounds memory while draining a large backlog
SYNC_CONCURRENCY = 32  # tasks drained at once; each holds its own lock, servers multiplex
FANOUT_CONCURRENCY = 256  # fan-outs in flight at once; beyond this creation still answers
PULL_PAGES = 200  # pages of remote changes read per sync run; the rest waits for the next run

TaskListener = Callable[[Task, str], Awaitable[None]]
ChangeListener = Callable[[Task, Operation], Awaitable[None]]
SuccessorPlanner = Callable[[Task], Awaitable[TaskDraft | None]]


def _kind(exc: BaseException) -> str:
    if isinstance(exc, BreakerOpen):
        return "breaker_open"
    if isinstance(exc, ServerUnavailable):
        return "unavailable"
    if isinstance(exc, ToolFailed):
        return "tool_failed"
    return "error"


class EnterpriseTaskOrchestrator:
    """Local source of truth plus resilient fan-out to every enabled MCP server."""

    def __init__(
        self,
        config_path: str | os.PathLike[str] | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        *,
        config: AppConfig | None = None,
        integrations: Mapping[str, Integration] | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.config = config if config is not None else load_config(config_path)
        self.data_dir = Path(data_dir or os.environ.get("TASKBOT_DATA_DIR") or "data")
        self.store = SqliteTaskStore(self.data_dir / "taskbot.db")
        self.metrics = Metrics()
        self.health = HealthBoard()
        self.task_failed_listeners: list[TaskListener] = []
        # Called after every local change is committed (reminders follow their task here).
        self.change_listeners: list[ChangeListener] = []
        # Plans the next occurrence of a recurring task being completed (the reminder
        # service knows its owner's zone); both are then written in one transaction.
        self.successor_planner: SuccessorPlanner | None = None
        self._given = dict(integrations) if integrations is not None else None
        self.integrations: dict[str, Integration] = {}
        self._clock = clock
        self._sleep = sleep
        self.breakers: dict[str, CircuitBreaker] = {}
        self._locks = KeyedLocks()
        self._inflight: set[asyncio.Task[object]] = set()
        self._fanout_slots = asyncio.Semaphore(FANOUT_CONCURRENCY)
        # Last outbox depth read from the store; `get_statistics` is sync and cannot query.
        self._depth: dict[str, int] = {}
        self._started = False
        self._closing = False
        self._start_lock = asyncio.Lock()
        try:
            self.tz = ZoneInfo(self.config.defaults.timezone)
        except (KeyError, ValueError) as exc:
            raise ConfigError(f"unknown time zone {self.config.defaults.timezone!r}") from exc

    # -- lifecycle --------------------------------------------------------------------------

    async def __aenter__(self) -> EnterpriseTaskOrchestrator:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def start(self) -> None:
        """Open the store, start every integration at once, then drain leftovers."""
        async with self._start_lock:
            if self._started:
                return
            await self.store.open()
            try:
                await self._start_servers()
            except BaseException:
                # A half-started orchestrator must not outlive the error: aiosqlite's worker
                # thread alone keeps the process from exiting.
                await self._close_started()
                raise
            self._started = True
        # Work acknowledged before a crash or a stop is still in the outbox: send it now.
        self._spawn(self.sync())

    async def _close_started(self) -> None:
        """Close every integration (each logs its own failure), then the store."""
        await asyncio.gather(*(self._close_one(n, i) for n, i in self.integrations.items()))
        await self.store.close()

    async def _start_servers(self) -> None:
        """Build the enabled integrations, their health entries and breakers; start them."""
        self.integrations = dict(self._build_integrations())
        for name, cfg in self.config.servers.items():
            live = name in self.integrations
            self.health.add(
                name,
                priority=cfg.priority,
                required=cfg.required,
                timeout=cfg.timeout,
                enabled=live,
            )
            if live:
                self.breakers[name] = CircuitBreaker(
                    name,
                    threshold=self.config.circuit_breaker_threshold,
                    cooldown=self.config.circuit_breaker_cooldown,
                    clock=self._clock,
                    on_change=self._breaker_changed,
                )
        await asyncio.gather(*(self._start_one(n) for n in self.integrations))

    def _build_integrations(self) -> Mapping[str, Integration]:
        if self._given is not None:
            return {n: i for n, i in self._given.items() if self._server(n).enabled}
        factory = discover_factory()
        if factory is None:
            log.warning("integrations.missing")
            return {}
        return factory(self.config, self.data_dir)

    def _server(self, name: str) -> ServerConfig:
        return self.config.servers.get(name) or ServerConfig(enabled=False)

    async def _start_one(self, name: str) -> None:
        began = time.perf_counter()
        try:
            await asyncio.wait_for(self.integrations[name].start(), self._server(name).timeout * 3)
        except (IntegrationError, TimeoutError, OSError) as exc:
            log.error("mcp.server.start_failed", extra={"server": name, "error": str(exc)})
            self.health.record(name, ok=False, latency_ms=None, error=str(exc))
            return
        took = (time.perf_counter() - began) * 1000
        self.health.record(name, ok=True, latency_ms=None)
        log.info("mcp.server.ready", extra={"server": name, "duration_ms": round(took, 1)})

    async def close(self) -> None:
        """Finish in-flight work for a bounded time, then close servers and the store."""
        if self._closing:
            return
        self._closing = True
        if self._inflight:
            _done, pending = await asyncio.wait(set(self._inflight), timeout=CLOSE_GRACE_S)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        await self._close_started()
        log.info("orchestrator.closed")

    async def _close_one(self, name: str, integration: Integration) -> None:
        try:
            await integration.close()
        except Exception:
            log.exception("mcp.server.close_failed", extra={"server": name})

    def _spawn(self, coro: Awaitable[object]) -> None:
        task: asyncio.Task[object] = asyncio.ensure_future(coro)
        self._inflight.add(task)
        task.add_done_callback(self._reap)

    def _reap(self, task: asyncio.Task[object]) -> None:
        self._inflight.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("fanout.crashed", exc_info=task.exception())

    async def _ensure_started(self) -> None:
        if self._closing:
            raise ServerUnavailable("shutting down", server="orchestrator")
        if not self._started:
            await self.start()

    # -- task changes -----------------------------------------------------------------------

    def _draft(
        self,
        title: str,
        description: str,
        priority: int,
        deadline: datetime | str | None,
        tags: Iterable[str] | None,
        **owner: object,
    ) -> TaskDraft:
        title = " ".join(title.split())
        if not title:
            raise InputError("the task needs a title", code="no_title")
        if len(title) > MAX_TITLE:
            raise InputError(f"the title is longer than {MAX_TITLE} characters", code="too_long")
        if len(description) > MAX_DESCRIPTION:
            raise InputError("the description is too long", code="too_long")
        if not MIN_PRIORITY <= priority <= MAX_PRIORITY:
            raise InputError("priority goes from 1 (most urgent) to 5", code="bad_priority")
        clean_tags = tuple(dict.fromkeys(t.strip().lstrip("#").lower() for t in tags or ()))
        clean_tags = tuple(t for t in clean_tags if t)
        if len(clean_tags) > MAX_TAGS:
            raise InputError(f"at most {MAX_TAGS} tags", code="too_many_tags")
        return TaskDraft(
            title=title,
            description=description,
            priority=priority,
            deadline=self._deadline(deadline),
            tags=clean_tags,
            **owner,  # type: ignore[arg-type]
        )

    def _deadline(self, value: datetime | str | None) -> datetime | None:
        if value is None or value == "":
            return None
        if isinstance(value, str):
            try:
                value = datetime.fromisoformat(value)
            except ValueError as exc:
                raise InputError(
                    f"not a date: {value!r}", code="bad_date", suggestion="2026-08-01T12:00:00"
                ) from exc
        if value.tzinfo is None:  # naive means the configured default zone
            value = value.replace(tzinfo=self.tz)
        return value

    async def create_task(
        self,
        title: str,
        description: str = "",
        priority: int = DEFAULT_PRIORITY,
        deadline: datetime | str | None = None,
        tags: Iterable[str] | None = None,
        *,
        chat_id: int = 0,
        author_id: int | None = None,
        assignee: str | None = None,
        recurrence: str | None = None,
    ) -> Task:
        """Save the task and queue it for every server; returns before the fan-out."""
        began = time.perf_counter()
        draft = self._draft(
            title,
            description,
            priority,
            deadline,
            tags,
            chat_id=chat_id,
            author_id=author_id,
            assignee=assignee,
            recurrence=recurrence,
        )
        await self._ensure_started()
        task = await self.store.create_task(draft, uid=new_uid(), servers=self.integrations)
        self.metrics.tasks_created += 1
        took = (time.perf_counter() - began) * 1000
        self.metrics.reply_ms.append(took)
        log.info(
            "task.created",
            extra={"task_uid": task.uid, "chat_id": chat_id, "duration_ms": round(took, 2)},
        )
        self._spawn(self._fan_out(task.uid, began))
        await self._notify_change(task, Operation.CREATE)
        return task

    async def _notify_change(self, task: Task, op: Operation) -> None:
        for listener in self.change_listeners:
            try:
                await listener(task, op)
            except Exception:
                log.exception("listener.failed", extra={"task_uid": task.uid, "op": op.value})

    async def get_task(self, task_id: int, *, chat_id: int | None = None) -> Task:
        """The task, if `chat_id` (when given) may see it."""
        await self._ensure_started()
        task = await self.store.get_task(task_id)
        if chat_id is not None and task.chat_id != chat_id:
            raise TaskNotFound(task_id)
        if task.status is TaskStatus.DELETED:
            raise TaskNotFound(task_id)
        return task

    async def list_tasks(
        self,
        chat_id: int,
        *,
        statuses: Sequence[TaskStatus] = (TaskStatus.OPEN,),
        limit: int = 50,
        offset: int = 0,
    ) -> list[Task]:
        await self._ensure_started()
        return await self.store.list_tasks(chat_id, statuses=statuses, limit=limit, offset=offset)

    async def complete_task(self, task_id: int, *, chat_id: int | None = None) -> Task:
        """Mark done (idempotent: a second press changes nothing and sends nothing)."""
        task = await self.get_task(task_id, chat_id=chat_id)
        if task.status is TaskStatus.DONE:
            return task
        if task.status is not TaskStatus.OPEN:
            raise InputError(f"task {task_id} is {task.status.value}", code="bad_state")
        return await self._complete(task, self.integrations)

    async def _complete(self, task: Task, servers: Iterable[str], **fields: Any) -> Task:
        """COMPLETE, and for a recurring task its next occurrence in the same transaction."""
        planner = self.successor_planner
        draft = await planner(task) if planner is not None and task.recurrence else None
        if draft is None:
            return await self._change(
                task, Operation.COMPLETE, servers=servers, status=TaskStatus.DONE, **fields
            )
        done, successor = await self.store.complete_recurring(
            task,
            draft,
            successor_uid=new_uid(),
            servers=servers,
            successor_servers=self.integrations,
            **fields,
        )
        self.metrics.tasks_created += 1
        log.info("task.recurred", extra={"task_uid": task.uid, "next_uid": successor.uid})
        for uid in (done.uid, successor.uid):
            self._spawn(self._fan_out(uid, time.perf_counter()))
        await self._notify_change(done, Operation.COMPLETE)
        await self._notify_change(successor, Operation.CREATE)
        return done

    async def update_task(
        self, task_id: int, *, chat_id: int | None = None, **fields: object
    ) -> Task:
        """Change title, description, priority, deadline, tags or assignee."""
        task = await self.get_task(task_id, chat_id=chat_id)
        draft = self._draft(
            str(fields.get("title", task.title)),
            str(fields.get("description", task.description)),
            int(fields.get("priority", task.priority)),  # type: ignore[call-overload]
            fields.get("deadline", task.deadline),  # type: ignore[arg-type]
            fields.get("tags", task.tags),  # type: ignore[arg-type]
        )
        return await self._change(
            task,
            Operation.UPDATE,
            title=draft.title,
            description=draft.description,
            priority=draft.priority,
            deadline=draft.deadline,
            tags=draft.tags,
            assignee=fields.get("assignee", task.assignee),
            recurrence=fields.get("recurrence", task.recurrence),
        )

    async def delete_task(self, task_id: int, *, chat_id: int | None = None) -> Task:
        task = await self.get_task(task_id, chat_id=chat_id)
        return await self._change(task, Operation.DELETE, status=TaskStatus.DELETED)

    async def _change(
        self, task: Task, op: Operation, servers: Iterable[str] | None = None, **fields: Any
    ) -> Task:
        if servers is None:
            servers = self.integrations
        changed = await self.store.change_task(task, op, servers=servers, **fields)
        log.info("task.changed", extra={"task_uid": task.uid, "op": op.value})
        self._spawn(self._fan_out(task.uid, time.perf_counter()))
        await self._notify_change(changed, op)
        return changed

    # -- fan-out ------------------------------------------------------------------------------

    async def _fan_out(self, uid: str, began: float | None = None) -> None:
        async with self._fanout_slots:
            await self.dispatch(uid)
        if began is not None:
            self.metrics.fanout_ms.append((time.perf_counter() - began) * 1000)

    async def dispatch(self, uid: str) -> None:
        """Send every pending row of one task, tier by tier; safe to call any time."""
        async with self._locks.hold(uid):
            await self._dispatch_locked(uid)

    async def _dispatch_locked(self, uid: str) -> None:
        rows = await self.store.pending_for_task(uid)
        if not rows:
            return
        task = await self.store.get_by_uid(uid)
        links = await self.store.links(uid)
        by_server: dict[str, list[OutboxRow]] = {}
        for row in rows:
            by_server.setdefault(row.server, []).append(row)
        tiers = sorted({self._server(s).priority for s in by_server})
        for tier in tiers:
            names = [s for s in by_server if self._server(s).priority == tier]
            outcomes = await asyncio.gather(
                *(self._send_rows(task, s, by_server[s], links) for s in names)
            )
            verdicts = dict(zip(names, outcomes, strict=True))
            failed = [s for s, v in verdicts.items() if v == "dead" and self._server(s).required]
            if failed and task.status is not TaskStatus.FAILED:
                await self._compensate(task, failed[0])
                return
            if any(v == "pending" and self._server(s).required for s, v in verdicts.items()):
                return  # lower tiers wait for the required server; the sync job resumes

    async def _send_rows(
        self, task: Task, server: str, rows: list[OutboxRow], links: dict[str, str]
    ) -> str:
        """Send one server's rows in order; 'done', 'pending' (try later) or 'dead'."""
        integration = self.integrations.get(server)
        cfg = self._server(server)
        for row in rows:
            if integration is None:
                return "pending"
            change = Change(op=row.op, task=task, external_id=links.get(server))
            began = time.perf_counter()
            try:
                call = self._call_for(integration, change)
                external = await guarded_call(
                    call,
                    server=server,
                    tool=row.op.value,
                    breaker=self.breakers[server],
                    policy=RetryPolicy(attempts=cfg.retry_attempts, sleep=self._sleep),
                    attempt_timeout=cfg.timeout,
                )
            except (ServerUnavailable, BreakerOpen) as exc:
                self._record(server, began, exc)
                await self.store.note_attempt(row.id, str(exc))
                return "pending"
            except IntegrationError as exc:
                self._record(server, began, exc)
                await self.store.finish_outbox(row.id, OutboxState.DEAD, error=str(exc))
                log.error(
                    "outbox.dead",
                    extra={"server": server, "task_uid": task.uid, "op": row.op.value},
                )
                return "dead"
            self._record(server, began, None)
            link = (task.uid, server, external) if external else None
            await self.store.finish_outbox(row.id, OutboxState.DONE, external=link)
            if external:
                links[server] = external
            if row.op is Operation.UNDO:
                await self.store.drop_link(task.uid, server)
                links.pop(server, None)
        return "done"

    @staticmethod
    def _call_for(integration: Integration, change: Change) -> Callable[[], Awaitable[str | None]]:
        async def call() -> str | None:
            if change.op is Operation.UNDO:
                await integration.undo(change, change.external_id)
                return None
            return await integration.apply(change)

        return call

    def _record(self, server: str, began: float, exc: BaseException | None) -> None:
        took = (time.perf_counter() - began) * 1000
        self.metrics.record_call(server, took, None if exc is None else _kind(exc))
        if exc is not None:
            log.warning(
                "mcp.tool.failed",
                extra={"server": server, "kind": _kind(exc), "duration_ms": round(took, 1)},
            )

    async def _compensate(self, task: Task, culprit: str) -> None:
        """Roll the task back everywhere: FAILED locally, UNDO where a copy exists."""
        holders = [s for s in await self.store.links(task.uid) if s != culprit]
        await self.store.compensate(task.uid, holders)
        log.error(
            "task.compensated",
            extra={"task_uid": task.uid, "server": culprit, "undo": len(holders)},
        )
        failed = task.evolve(status=TaskStatus.FAILED)
        reason = f"{culprit} refused the task"
        for listener in self.task_failed_listeners:
            try:
                await listener(failed, reason)
            except Exception:
                log.exception("listener.failed", extra={"task_uid": task.uid})
        await self._dispatch_locked(task.uid)

    # -- recovery and health ------------------------------------------------------------------

    async def sync(self, *, server: str | None = None) -> int:
        """Read servers' own changes back, then drain pending outbox rows (recovery).

        Returns how many tasks had pending rows. A `server` names one server to drain
        (a breaker that closed); only the full run reads changes back.
        """
        if not self._started or self._closing:
            return 0
        if server is None:
            await self.pull()
        visited = 0
        cursor = 0
        slots = asyncio.Semaphore(SYNC_CONCURRENCY)

        async def one(uid: str) -> None:
            async with slots:
                await self.dispatch(uid)

        while not self._closing:
            batch = await self.store.pending_task_uids(
                server=server, after=cursor, limit=SYNC_BATCH
            )
            if not batch:
                break
            cursor = batch[-1][1]
            await asyncio.gather(*(one(uid) for uid, _ in batch))
            visited += len(batch)
        await self.outbox_depth()
        if visited:
            log.info("sync.done", extra={"tasks": visited, "server": server})
        return visited

    # -- two-way sync -------------------------------------------------------------------------

    async def pull(self) -> int:
        """Apply changes other clients made on the servers (`Pullable` ones); newest wins.

        Per task: a remote version that differs from ours and is newer becomes ours (queued to
        every other server, never back to its origin); an older one loses and ours is pushed
        over it. When both sides changed (ours still unsent, or ours newer), the conflict is
        logged as `sync.conflict` and both versions are kept in the store's `sync_conflicts`.
        Returns how many remote changes were applied.

        LIMIT: a local change still being retried when someone edits the same task there is
        pushed over that edit without a comparison (the pull runs only in the sync job). A
        conditional update on the server (apply only if its revision is still the one we saw)
        would close that window.
        """
        applied = 0
        for name, integration in list(self.integrations.items()):
            if isinstance(integration, Pullable) and not self._closing:
                applied += await self._pull_from(name, integration)
        return applied

    async def _pull_from(self, server: str, integration: Pullable) -> int:
        cfg = self._server(server)
        cursor = await self.store.sync_cursor(server)
        applied = 0
        for _ in range(PULL_PAGES):
            try:
                page = await guarded_call(
                    functools.partial(integration.pull, cursor),
                    server=server,
                    tool="pull",
                    breaker=self.breakers[server],
                    policy=RetryPolicy(attempts=cfg.retry_attempts, sleep=self._sleep),
                    attempt_timeout=cfg.timeout,
                )
            except IntegrationError as exc:
                log.warning("sync.pull.failed", extra={"server": server, "kind": _kind(exc)})
                break
            for remote in page.tasks:
                async with self._locks.hold(remote.uid):
                    applied += await self._merge(server, remote)
            if page.cursor is not None:
                cursor = page.cursor
                await self.store.set_sync_cursor(server, cursor)
            if not page.more or self._closing:
                break
        if applied:
            log.info("sync.pulled", extra={"server": server, "tasks": applied})
        return applied

    async def _merge(self, server: str, remote: RemoteTask) -> int:
        """Settle one remote version against ours; 1 if it was applied here."""
        try:
            local = await self.store.get_by_uid(remote.uid)
        except TaskNotFound:
            return 0  # made on the server by someone else: no chat owns it (LIMIT in README)
        if local.status in (TaskStatus.DELETED, TaskStatus.FAILED):
            return 0  # final here; the delete or the undo is (or was) on its way there
        try:
            fields = self._remote_fields(local, remote)
        except InputError as exc:
            log.warning(
                "sync.rejected", extra={"server": server, "task_uid": local.uid, "code": exc.code}
            )
            return 0
        if not fields:
            return 0  # our own write read back, or a change already made here
        unsent = any(row.server == server for row in await self.store.pending_for_task(local.uid))
        remote_wins = remote.updated_at is not None and remote.updated_at > local.updated_at
        if unsent or not remote_wins:
            await self._keep_conflict(server, local, remote, fields, remote_wins=remote_wins)
        if not remote_wins:
            if not unsent:  # push ours over theirs; a copy they deleted is made again
                op = Operation.CREATE if remote.deleted else Operation.UPDATE
                await self.store.enqueue(local.uid, server, op)
                self._spawn(self._fan_out(local.uid))
            return 0
        op = self._remote_op(local, fields)
        others = [name for name in self.integrations if name != server]
        log.info(
            "sync.applied",
            extra={
                "server": server,
                "task_uid": local.uid,
                "op": op.value,
                "fields": sorted(fields),
            },
        )
        if op is Operation.COMPLETE:
            rest = {k: v for k, v in fields.items() if k != "status"}
            await self._complete(local, others, **rest)
        else:
            await self._change(local, op, others, **fields)
        return 1

    def _remote_fields(self, local: Task, remote: RemoteTask) -> dict[str, Any]:
        """The fields where the remote version differs from ours, validated like user input."""
        if remote.deleted:
            return {"status": TaskStatus.DELETED}
        draft = self._draft(
            remote.title, remote.description, remote.priority, remote.deadline, remote.tags
        )
        theirs: dict[str, Any] = {
            "title": draft.title,
            "description": draft.description,
            "priority": draft.priority,
            "deadline": draft.deadline,
            "tags": draft.tags,
            "status": TaskStatus.DONE if remote.done else TaskStatus.OPEN,
        }
        return {k: v for k, v in theirs.items() if getattr(local, k) != v}

    @staticmethod
    def _remote_op(local: Task, fields: Mapping[str, Any]) -> Operation:
        status = fields.get("status")
        if status is TaskStatus.DELETED:
            return Operation.DELETE
        if status is TaskStatus.DONE and local.status is TaskStatus.OPEN:
            return Operation.COMPLETE
        return Operation.UPDATE

    async def _keep_conflict(
        self,
        server: str,
        local: Task,
        remote: RemoteTask,
        fields: Mapping[str, Any],
        *,
        remote_wins: bool,
    ) -> None:
        winner = server if remote_wins else "local"
        mine = {k: getattr(local, k) for k in fields} | {"updated_at": local.updated_at}
        theirs = dict(fields) | {"updated_at": remote.updated_at}
        await self.store.record_conflict(
            local.uid, server, winner=winner, local=mine, remote=theirs
        )
        # Field names and stamps only: the versions themselves may hold private text.
        log.warning(
            "sync.conflict",
            extra={
                "server": server,
                "task_uid": local.uid,
                "winner": winner,
                "fields": sorted(fields),
                "local_updated": local.updated_at.isoformat(),
                "remote_updated": remote.updated_at.isoformat() if remote.updated_at else None,
            },
        )

    def _breaker_changed(self, server: str, old: BreakerState, new: BreakerState) -> None:
        if new is BreakerState.CLOSED and self._started and not self._closing:
            self._spawn(self.sync(server=server))

    async def check_health(self) -> dict[str, ServerStatus]:
        """Probe every live server once (through its breaker) and update the board."""
        await self._ensure_started()
        await asyncio.gather(*(self._probe(n) for n in self.integrations))
        await self.outbox_depth()
        return {n: h.status for n, h in self.health.servers.items()}

    async def _probe(self, name: str) -> None:
        cfg = self._server(name)
        breaker = self.breakers[name]
        began = time.perf_counter()
        try:
            await guarded_call(
                self.integrations[name].probe,
                server=name,
                tool="probe",
                breaker=breaker,
                policy=RetryPolicy(attempts=0, sleep=self._sleep),
                attempt_timeout=cfg.timeout,
            )
        except IntegrationError as exc:
            self.health.record(
                name, ok=False, latency_ms=None, error=str(exc), breaker=breaker.state
            )
            return
        took = (time.perf_counter() - began) * 1000
        self.health.record(name, ok=True, latency_ms=took, breaker=breaker.state)

    def get_health_status(self) -> dict[str, object]:
        for name, breaker in self.breakers.items():
            self.health.servers[name].breaker = breaker.state.value
        return {
            "overall": self.health.overall().value,
            "server_health": {n: h.as_dict() for n, h in self.health.servers.items()},
        }

    async def outbox_depth(self) -> dict[str, int]:
        """Pending rows per server, read now (and kept for `get_statistics`)."""
        self._depth = await self.store.outbox_depth()
        return self._depth

    def get_statistics(self) -> dict[str, object]:
        servers = {n: m.summary() for n, m in self.metrics.servers.items()}
        return {
            "total_operations": self.metrics.total_operations,
            "tasks_created": self.metrics.tasks_created,
            "error_rates": {n: s["error_rate"] for n, s in servers.items()},
            "servers": servers,
            "reply_ms": self._pcts(list(self.metrics.reply_ms)),
            "fanout_ms": self._pcts(list(self.metrics.fanout_ms)),
            "outbox_depth": dict(self._depth),
            "outbox_pending": sum(self._depth.values()),
        }

    @staticmethod
    def _pcts(samples: list[float]) -> dict[str, float]:
        return {f"p{q}": round(percentile(samples, q), 2) for q in (50, 95, 99)}

    async def wait_synced(self, uid: str, *, within: float = 30.0) -> dict[str, OutboxState]:
        """Wait until no row of `uid` is pending (demo and tests); returns each server's state."""
        deadline = time.monotonic() + within
        while True:
            rows = await self.store.outbox_for_task(uid)
            latest: dict[str, OutboxState] = {}
            for row in rows:
                latest[row.server] = row.state
            if all(s is not OutboxState.PENDING for s in latest.values()):
                return latest
            if time.monotonic() >= deadline:
                return latest
            await asyncio.sleep(0.02)

    def integration(self, name: str) -> Integration | None:
        """The live integration called `name`, for features beyond the fan-out."""
        return self.integrations.get(name)
