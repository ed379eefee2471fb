"""What the servers know about a task, asked from the chat.

`/search` goes by meaning through "hpkv-memory" (exact word matches first, since the small
model can rank a literal hit below a loose one), or by words alone when it is off or down.
`/related` walks the "memory" knowledge graph, `/history` reads the "git" log, and `/files`,
`/note` and documents sent to a task keep files beside it through "filesystem". Each
integration is found by name and checked against the small Protocol below, so a server that is
disabled gives a clear sentence, never an error.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from aiogram import Bot, F, Router
from aiogram.filters import Command, CommandObject
from aiogram.types import Message

from bot.handlers.lookup import id_and_rest, task_to_change, task_to_show
from bot.rendering import esc, task_line, when
from bot.replies import answer_long
from bot.texts import text
from core.errors import IntegrationError, TaskNotFound
from core.models import Task, TaskStatus
from core.orchestrator import EnterpriseTaskOrchestrator
from core.queries import TaskQueries

log = logging.getLogger("taskbot.bot")

SEMANTIC, GRAPH, HISTORY, FILES = "hpkv-memory", "memory", "git", "filesystem"
#: Largest document taken as an attachment; it travels base64-encoded inside one JSON message.
MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024
#: Commits `/history` shows, newest first.
HISTORY_SHOWN = 20
_VISIBLE = (TaskStatus.OPEN, TaskStatus.DONE)
_TASK_MENTION = re.compile(r"#(\d{1,11})\b")
Clock = Callable[[], datetime]


# -- what each feature needs from its integration -------------------------------------------


class _Hit(Protocol):
    task_uid: str


@runtime_checkable
class SemanticSearch(Protocol):
    async def search(self, query: str, *, chat_id: int) -> Sequence[_Hit]: ...


@runtime_checkable
class KnowledgeGraph(Protocol):
    async def neighbour_tasks(self, uid: str) -> dict[str, list[str]]: ...


@runtime_checkable
class TaskHistory(Protocol):
    async def history(self, uid: str) -> list[tuple[str, str, str]]: ...


class _Stored(Protocol):
    name: str
    size: int


@runtime_checkable
class TaskFiles(Protocol):
    async def attach(self, uid: str, name: str, data: bytes) -> _Stored: ...

    async def attachments(self, uid: str) -> Sequence[_Stored]: ...

    async def add_note(self, uid: str, note: str, *, when: datetime, heading: str) -> None: ...

    async def notes(self, uid: str) -> str | None: ...


# -- helpers ---------------------------------------------------------------------------------


async def _visible(orch: EnterpriseTaskOrchestrator, chat_id: int, uid: str) -> Task | None:
    """The task with this uid if it is open or done in this chat (never another chat's)."""
    try:
        task = await orch.store.get_by_uid(uid)
    except TaskNotFound:
        return None
    return task if task.chat_id == chat_id and task.status in _VISIBLE else None


def human_size(size: int) -> str:
    """`512 B`, `12.5 KB`, `3.1 MB`."""
    if size < 1024:
        return f"{size} B"
    if size < 1024 * 1024:
        return f"{size / 1024:.1f} KB"
    return f"{size / 1024 / 1024:.1f} MB"


async def _task_files(
    message: Message, orch: EnterpriseTaskOrchestrator, lang: str
) -> TaskFiles | None:
    """The "filesystem" integration, or None once the user has been told it is off."""
    store = orch.integration(FILES)
    if not isinstance(store, TaskFiles):
        await message.answer(text(lang, "files_off"))
        return None
    return store


def _down(lang: str, exc: IntegrationError) -> str:
    log.warning("knowledge.server_failed", extra={"server": exc.server, "tool": exc.tool})
    return text(lang, "server_down", server=esc(exc.server))


# -- /search ---------------------------------------------------------------------------------


async def search(
    message: Message,
    command: CommandObject,
    orch: EnterpriseTaskOrchestrator,
    queries: TaskQueries,
    lang: str,
    tz: ZoneInfo,
    clock: Clock,
) -> None:
    """Tasks of this chat matching the words, then the closest in meaning."""
    words = (command.args or "").strip()
    if not words:
        await message.answer(text(lang, "search_usage"))
        return
    chat_id = message.chat.id
    by_words = await queries.search(chat_id, words)
    found = list(by_words.tasks)
    memory = orch.integration(SEMANTIC)
    if isinstance(memory, SemanticSearch):
        try:
            hits = await memory.search(words, chat_id=chat_id)
        except IntegrationError as exc:
            log.warning("search.semantic_failed", extra={"chat_id": chat_id, "error": str(exc)})
            hits = []
        for hit in hits:
            task = await _visible(orch, chat_id, hit.task_uid)
            if task is not None and all(task.id != seen.id for seen in found):
                found.append(task)
    if not found:
        await message.answer(text(lang, "search_none", words=esc(words[:100])))
        return
    now = clock()
    count = by_words.total + len(found) - len(by_words.tasks)
    lines = [text(lang, "search_header", count=count)]
    lines += [task_line(task, tz, lang, now) for task in found]
    await answer_long(message, "\n".join(lines))


# -- /related, /history ----------------------------------------------------------------------


async def related(
    message: Message,
    command: CommandObject,
    orch: EnterpriseTaskOrchestrator,
    lang: str,
    tz: ZoneInfo,
    clock: Clock,
) -> None:
    """Tasks sharing a tag or a person with this one, grouped by what they share."""
    task_id, _ = id_and_rest(command.args)
    task = await task_to_show(message, orch, task_id, lang, usage="related_usage")
    if task is None:
        return
    graph = orch.integration(GRAPH)
    if not isinstance(graph, KnowledgeGraph):
        await message.answer(text(lang, "related_off"))
        return
    try:
        groups = await graph.neighbour_tasks(task.uid)
    except IntegrationError as exc:
        await message.answer(_down(lang, exc))
        return
    now = clock()
    lines = [text(lang, "related_header", id=task.id, title=esc(task.title))]
    for entity, uids in sorted(groups.items()):
        others = [t for uid in uids if (t := await _visible(orch, task.chat_id, uid))]
        if others:
            lines.append(f"\n<b>{esc(_entity_label(entity))}</b>")
            lines += [task_line(other, tz, lang, now) for other in sorted(others, key=_id)]
    if len(lines) == 1:
        await message.answer(text(lang, "related_none", id=task.id))
        return
    await answer_long(message, "\n".join(lines))


def _entity_label(entity: str) -> str:
    """`tag:work` -> `#work`, `person:alice` -> `@alice`; anything else as it is."""
    kind, _, name = entity.partition(":")
    return {"tag": f"#{name}", "person": f"@{name}"}.get(kind, entity)


async def history(
    message: Message,
    command: CommandObject,
    orch: EnterpriseTaskOrchestrator,
    lang: str,
    tz: ZoneInfo,
    clock: Clock,
) -> None:
    """Every commit of the task's file, newest first: date and subject."""
    task_id, _ = id_and_rest(command.args)
    task = await task_to_show(message, orch, task_id, lang, usage="history_usage")
    if task is None:
        return
    git = orch.integration(HISTORY)
    if not isinstance(git, TaskHistory):
        await message.answer(text(lang, "history_off"))
        return
    try:
        commits = await git.history(task.uid)
    except IntegrationError as exc:
        await message.answer(_down(lang, exc))
        return
    if not commits:
        await message.answer(text(lang, "history_none", id=task.id))
        return
    lines = [text(lang, "history_header", id=task.id, title=esc(task.title), count=len(commits))]
    now = clock()
    lines += [
        f"• {_commit_time(date, tz, lang, now)} · {esc(subject)} <code>{esc(sha[:7])}</code>"
        for sha, date, subject in commits[:HISTORY_SHOWN]
    ]
    await answer_long(message, "\n".join(lines))


def _commit_time(raw: str, tz: ZoneInfo, lang: str, now: datetime) -> str:
    """The commit's time in the reader's zone, as the rest of the bot writes times."""
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        return esc(raw)
    return when(moment, tz, lang, now) if moment.tzinfo else esc(raw)


# -- files and notes ---------------------------------------------------------------------------


async def files(
    message: Message, command: CommandObject, orch: EnterpriseTaskOrchestrator, lang: str
) -> None:
    """The task's attachments and notes."""
    task_id, _ = id_and_rest(command.args)
    task = await task_to_show(message, orch, task_id, lang, usage="files_usage")
    if task is None:
        return
    store = await _task_files(message, orch, lang)
    if store is None:
        return
    try:
        stored = await store.attachments(task.uid)
        notes = await store.notes(task.uid)
    except IntegrationError as exc:
        await message.answer(_down(lang, exc))
        return
    if not stored and notes is None:
        await message.answer(text(lang, "files_none", id=task.id))
        return
    lines = [text(lang, "files_header", id=task.id, title=esc(task.title))]
    lines += [f"📄 {esc(item.name)} · {human_size(item.size)}" for item in stored]
    if notes is not None:
        count = sum(1 for line in notes.splitlines() if line.startswith("- "))
        lines.append(text(lang, "files_notes", count=count))
        lines += [esc(line) for line in notes.splitlines() if line.startswith(("- ", "  "))]
    await answer_long(message, "\n".join(lines))


async def note(
    message: Message,
    command: CommandObject,
    orch: EnterpriseTaskOrchestrator,
    bot: Bot,
    lang: str,
    clock: Clock,
) -> None:
    """`/note 12 Called the landlord` appends a dated line to the task's notes.md."""
    task_id, body = id_and_rest(command.args)
    wanted = task_id if body else None  # a bare id has no note to keep
    task = await task_to_change(message, orch, bot, wanted, lang, usage="note_usage")
    if task is None:
        return
    store = await _task_files(message, orch, lang)
    if store is None:
        return
    heading = f"Notes on task #{task.id}: {task.title}"
    try:
        await store.add_note(task.uid, body, when=clock(), heading=heading)
    except IntegrationError as exc:
        await message.answer(_down(lang, exc))
        return
    log.info("task.noted", extra={"task_uid": task.uid, "size": len(body)})
    await message.answer(text(lang, "noted", id=task.id))


def attach_target(message: Message, bot_id: int) -> int | None:
    """The task a document is for: `/attach 12` as caption, or the card it replies to."""
    caption = (message.caption or "").strip()
    if caption.startswith("/attach"):
        command, _, rest = caption.partition(" ")
        if command.partition("@")[0] == "/attach":
            task_id, _ = id_and_rest(rest)
            return task_id
    replied = message.reply_to_message
    if replied is not None and replied.from_user is not None and replied.from_user.id == bot_id:
        mention = _TASK_MENTION.search(replied.text or replied.caption or "")
        return int(mention.group(1)) if mention else None
    return None


async def attach_document(
    message: Message,
    orch: EnterpriseTaskOrchestrator,
    bot: Bot,
    lang: str,
) -> None:
    """A document sent with `/attach 12`, or in reply to a task's card, is kept with the task."""
    document = message.document
    assert document is not None  # the filter guarantees it
    task_id = attach_target(message, bot.id)
    # In a group, a document meant for no task is the members' own: no usage text there.
    usage = "attach_usage" if message.chat.type == "private" else None
    task = await task_to_change(message, orch, bot, task_id, lang, usage=usage)
    if task is None:
        return
    store = await _task_files(message, orch, lang)
    if store is None:
        return
    if (document.file_size or 0) > MAX_ATTACHMENT_BYTES:
        limit = MAX_ATTACHMENT_BYTES // (1024 * 1024)
        await message.answer(text(lang, "attach_too_big", max=limit))
        return
    downloaded = await bot.download(document)
    assert downloaded is not None  # no destination given: aiogram returns the bytes
    data = downloaded.read()
    if len(data) > MAX_ATTACHMENT_BYTES:  # the size Telegram announced may be missing
        limit = MAX_ATTACHMENT_BYTES // (1024 * 1024)
        await message.answer(text(lang, "attach_too_big", max=limit))
        return
    try:
        stored = await store.attach(task.uid, document.file_name or "file", data)
    except IntegrationError as exc:
        await message.answer(_down(lang, exc))
        return
    log.info("task.attached", extra={"task_uid": task.uid, "size": len(data)})
    size = human_size(stored.size)
    await message.answer(text(lang, "attached", id=task.id, name=esc(stored.name), size=size))


async def attach_usage(message: Message, lang: str) -> None:
    """`/attach` as text: the file has to come with it."""
    await message.answer(text(lang, "attach_usage"))


def _id(task: Task) -> int:
    return task.id


def build_router() -> Router:
    """A fresh router per dispatcher: an aiogram router belongs to one parent only."""
    router = Router(name="knowledge")
    router.message.register(attach_document, F.document)
    router.message.register(search, Command("search"))
    router.message.register(related, Command("related"))
    router.message.register(history, Command("history"))
    router.message.register(files, Command("files"))
    router.message.register(note, Command("note"))
    router.message.register(attach_usage, Command("attach"))
    return router
