"""Domain records of taskbot: plain dataclasses, no I/O."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from enum import StrEnum

MIN_PRIORITY = 1  # most urgent, what `!1` means
MAX_PRIORITY = 5
DEFAULT_PRIORITY = 3
MAX_TITLE = 256
MAX_DESCRIPTION = 4000
MAX_TAGS = 20


def utcnow() -> datetime:
    """Aware 'now' in UTC; the one clock models use when none is injected."""
    return datetime.now(UTC)


def new_uid() -> str:
    """Idempotency key of a task: the same uid never makes two remote copies."""
    return uuid.uuid4().hex


class TaskStatus(StrEnum):
    OPEN = "open"
    DONE = "done"
    FAILED = "failed"  # a required server refused it; compensation ran
    DELETED = "deleted"


class Operation(StrEnum):
    """What happened to a task; each becomes one outbox row per server."""

    CREATE = "create"
    UPDATE = "update"
    COMPLETE = "complete"
    DELETE = "delete"
    UNDO = "undo"  # compensation: remove what a CREATE left behind


class OutboxState(StrEnum):
    PENDING = "pending"
    DONE = "done"
    DEAD = "dead"  # failed definitively; kept for the record
    CANCELLED = "cancelled"  # superseded by compensation


class ServerStatus(StrEnum):
    ONLINE = "ONLINE"
    DEGRADED = "DEGRADED"
    ERROR = "ERROR"
    DISABLED = "DISABLED"
    STARTING = "STARTING"


@dataclass(frozen=True, slots=True)
class TaskDraft:
    """A validated request to create a task, before it has an id."""

    title: str
    description: str = ""
    priority: int = DEFAULT_PRIORITY
    deadline: datetime | None = None
    tags: tuple[str, ...] = ()
    chat_id: int = 0
    author_id: int | None = None
    assignee: str | None = None
    recurrence: str | None = None  # a serialised rule (core.quickadd.Recurrence.to_text)


@dataclass(frozen=True, slots=True)
class Task:
    """One task as the local store holds it; `uid` is its identity everywhere else."""

    id: int
    uid: str
    title: str
    description: str
    priority: int
    deadline: datetime | None
    tags: tuple[str, ...]
    status: TaskStatus
    chat_id: int
    author_id: int | None
    assignee: str | None
    created_at: datetime
    updated_at: datetime
    version: int = 1
    recurrence: str | None = None

    def evolve(self, **changes: object) -> Task:
        """Copy with changes; the store bumps `version`."""
        return replace(self, **changes)  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready snapshot, the payload integrations receive."""
        return {
            "id": self.id,
            "uid": self.uid,
            "title": self.title,
            "description": self.description,
            "priority": self.priority,
            "deadline": self.deadline.isoformat() if self.deadline else None,
            "tags": list(self.tags),
            "status": self.status.value,
            "chat_id": self.chat_id,
            "author_id": self.author_id,
            "assignee": self.assignee,
            "created_at": self.created_at.isoformat(),
            "updated_at": self.updated_at.isoformat(),
            "version": self.version,
            "recurrence": self.recurrence,
        }


@dataclass(frozen=True, slots=True)
class Change:
    """One operation on one task, as handed to one integration."""

    op: Operation
    task: Task
    external_id: str | None = None  # this server's id for the task, once known


@dataclass(slots=True)
class OutboxRow:
    id: int
    task_uid: str
    server: str
    op: Operation
    seq: int
    state: OutboxState
    attempts: int
    last_error: str | None
    created_at: datetime


@dataclass(slots=True)
class CreateResult:
    """What `create_task` gives back: the stored task and, once awaited, the fan-out."""

    task: Task
    outcomes: dict[str, str] = field(default_factory=dict)  # server -> "ok" | error text


@dataclass(frozen=True, slots=True)
class RemoteTask:
    """A task as another server holds it, read back by the sync job (two-way sync).

    `uid` is our task's uid (the remote's reference to it); `updated_at` is when the server
    last changed it, by its own clock; `deleted` means the server dropped its copy.
    """

    uid: str
    external_id: str
    updated_at: datetime | None
    title: str = ""
    description: str = ""
    priority: int = DEFAULT_PRIORITY
    deadline: datetime | str | None = None  # as the server wrote it; checked like user input
    tags: tuple[str, ...] = ()
    done: bool = False
    deleted: bool = False


@dataclass(frozen=True, slots=True)
class RemotePage:
    """One read of a server's changes: hand `cursor` back to read on; `more` if it was cut."""

    tasks: tuple[RemoteTask, ...]
    cursor: str | None
    more: bool = False
