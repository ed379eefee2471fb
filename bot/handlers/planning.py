"""`/split`: a task becomes a chain of steps, each a real task, planned in shrimp when it runs.

The steps are created locally first (the user's words are never lost to a planning server
that is down), then handed to the "shrimp-task-manager" integration, which plans them as a
chain the parent waits for. Each step carries the parent's tags plus `sub-<parent id>`, so
`/list #sub-12` shows them, and the reply lists them with a Done button per open step.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message

from bot.handlers.lookup import button_message, head_and_rest, task_to_change, task_to_press
from bot.rendering import esc, plain, task_line
from bot.replies import answer_long, edit
from bot.texts import text
from core.errors import InputError, IntegrationError
from core.models import MAX_TAGS, MAX_TITLE, Task, TaskStatus
from core.orchestrator import EnterpriseTaskOrchestrator
from core.queries import TaskFilter, TaskQueries

log = logging.getLogger("taskbot.bot")

PLANNER = "shrimp-task-manager"
#: Steps one /split may create; bounds the tasks (and the fan-out) a single message makes.
MAX_STEPS = 20
#: Characters of a step title on its Done button.
BUTTON_TITLE_CHARS = 40
Clock = Callable[[], datetime]


@runtime_checkable
class Planner(Protocol):
    """What `/split` needs from the planning integration."""

    async def split(self, parent: Task, steps: Sequence[Task]) -> list[str]: ...


class StepDone(CallbackData, prefix="sp1"):
    """`sp1:<parent id>:<step id>`: the Done button of one step under a split."""

    parent: int
    task_id: int


def step_tag(parent_id: int) -> str:
    """The tag every step of a parent carries: `/list #sub-12` shows them."""
    return f"sub-{parent_id}"


def parse_steps(raw: str) -> list[str]:
    """`Buy paint; Paint walls` or one step per line -> clean titles, in order."""
    titles = [" ".join(part.split()) for part in re.split(r"[;\n]", raw)]
    titles = [title for title in titles if title]
    if len(titles) > MAX_STEPS:
        raise InputError(f"at most {MAX_STEPS} steps at once", code="too_many_steps")
    if any(len(title) > MAX_TITLE for title in titles):
        raise InputError(f"a step is longer than {MAX_TITLE} characters", code="too_long")
    return titles


async def split(
    message: Message,
    command: CommandObject,
    orch: EnterpriseTaskOrchestrator,
    bot: Bot,
    queries: TaskQueries,
    lang: str,
    tz: ZoneInfo,
    clock: Clock,
) -> None:
    """`/split 12 Buy paint; Paint walls; Clean up`."""
    head, rest = head_and_rest(command.args)
    titles = parse_steps(rest)
    # Not `parse_task_id`: /split lets 12 characters through, `#` included, so a bare 12-digit
    # id is looked up (and not found) where the other commands answer with their usage.
    named = head.lstrip("#").isdigit() and len(head) <= 12 and bool(titles)
    parent_id = int(head.lstrip("#")) if named else None
    parent = await task_to_change(message, orch, bot, parent_id, lang, usage="split_usage")
    if parent is None:
        return
    if parent.status is not TaskStatus.OPEN:
        raise InputError(f"task {parent.id} is {parent.status.value}", code="bad_state")
    tags = [*parent.tags[: MAX_TAGS - 1], step_tag(parent.id)]
    steps = [
        await orch.create_task(
            title,
            priority=parent.priority,
            tags=tags,
            chat_id=parent.chat_id,
            author_id=message.from_user.id if message.from_user else None,
            assignee=parent.assignee,
        )
        for title in titles
    ]
    note = await _plan(orch, parent, steps, lang)
    body, markup = await render_steps(queries, parent, lang, tz, clock())
    await answer_long(message, f"{body}\n\n{note}", reply_markup=markup)


async def _plan(
    orch: EnterpriseTaskOrchestrator, parent: Task, steps: list[Task], lang: str
) -> str:
    """Hand the chain to the planner; the sentence that tells the user how it went."""
    planner = orch.integration(PLANNER)
    if not isinstance(planner, Planner):
        return text(lang, "split_sync_off")
    limit = orch.config.servers[PLANNER].timeout * 2
    try:
        await asyncio.wait_for(planner.split(parent, steps), limit)
    except (IntegrationError, TimeoutError) as exc:
        log.warning(
            "planning.split_failed",
            extra={"task_uid": parent.uid, "error_kind": type(exc).__name__},
        )
        return text(lang, "split_sync_failed")
    log.info("planning.split", extra={"task_uid": parent.uid, "steps": len(steps)})
    return text(lang, "split_planned")


async def render_steps(
    queries: TaskQueries,
    parent: Task,
    lang: str,
    tz: ZoneInfo,
    now: datetime,
) -> tuple[str, InlineKeyboardMarkup]:
    """The parent's steps as a list, with a Done button for each open one."""
    flt = TaskFilter(statuses=(TaskStatus.OPEN, TaskStatus.DONE), tag=step_tag(parent.id))
    steps = sorted((await queries.page(parent.chat_id, flt, size=MAX_STEPS * 5)).tasks, key=_id)
    header = text(lang, "split_header", id=parent.id, title=esc(parent.title), count=len(steps))
    lines = [header, *(task_line(step, tz, lang, now) for step in steps)]
    buttons = [
        [
            InlineKeyboardButton(
                text=text(lang, "btn_step_done", id=step.id, title=_short(step.title)),
                callback_data=StepDone(parent=parent.id, task_id=step.id).pack(),
            )
        ]
        for step in steps
        if step.status is TaskStatus.OPEN
    ]
    return "\n".join(lines), InlineKeyboardMarkup(inline_keyboard=buttons)


async def step_done(
    query: CallbackQuery,
    callback_data: StepDone,
    orch: EnterpriseTaskOrchestrator,
    bot: Bot,
    queries: TaskQueries,
    lang: str,
    tz: ZoneInfo,
    clock: Clock,
) -> None:
    """Finish one step and redraw the list under the split; one answer per press."""
    message = await button_message(query, lang)
    if message is None:
        return
    found = await task_to_press(query, message, orch, bot, callback_data.task_id, lang)
    if found is None:
        return
    if found.status is TaskStatus.OPEN:
        found = await orch.complete_task(found.id, chat_id=found.chat_id)
    parent = await orch.store.get_task(callback_data.parent)
    body, markup = await render_steps(queries, parent, lang, tz, clock())
    await edit(message, body, reply_markup=markup)
    await query.answer(plain(text(lang, "done", id=found.id, title=esc(found.title)))[:200])


def _id(task: Task) -> int:
    return task.id


def _short(title: str) -> str:
    return title if len(title) <= BUTTON_TITLE_CHARS else title[: BUTTON_TITLE_CHARS - 1] + "…"


def build_router() -> Router:
    """A fresh router per dispatcher: an aiogram router belongs to one parent only."""
    router = Router(name="planning")
    router.message.register(split, Command("split"))
    router.callback_query.register(step_done, StepDone.filter())
    return router
