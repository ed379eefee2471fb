"""Step-by-step dialogs: a new task (title, deadline, tags/priority) and editing one field.

State is per user in a chat (aiogram's default key), so two people can run wizards in one group
at once. Each prompt carries Skip/Cancel buttons naming its own step; when the dialog moves on,
the old prompt loses its buttons, and a press that names another step is answered as stale.
Commands are never taken as answers: `/list` in the middle of a dialog still lists.
In groups with privacy mode on, the bot sees only replies to its own messages, so a prompt
there asks the user to reply to it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from aiogram import Bot, F, Router
from aiogram.filters import Command
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message, User

from bot.fields import Field, edit_values, parse_extras, parse_when
from bot.handlers.lookup import button_message, task_to_press
from bot.keyboards import (
    EditField,
    TaskAction,
    Verb,
    WizardStep,
    field_keyboard,
    task_keyboard,
    wizard_keyboard,
)
from bot.permissions import task_for_change
from bot.rendering import esc, plain, task_details
from bot.replies import drop_buttons, edit
from bot.texts import text
from core.errors import InputError
from core.models import MAX_TITLE, Task
from core.orchestrator import EnterpriseTaskOrchestrator

Clock = Callable[[], datetime]
_ANSWER = F.text & ~F.text.startswith("/")  # a typed answer, never a command


class NewTask(StatesGroup):
    title = State()
    deadline = State()
    extras = State()


class EditTask(StatesGroup):
    field = State()
    value = State()


def _step(state_name: str | None) -> str:
    """'NewTask:deadline' -> 'deadline': the name buttons carry."""
    return (state_name or "").rpartition(":")[2]


async def _prompt(
    message: Message,
    state: FSMContext,
    body: str,
    markup: InlineKeyboardMarkup,
    lang: str,
) -> None:
    """Ask the next question; the previous question's buttons go away."""
    data = await state.get_data()
    if message.chat.type != "private":
        body += text(lang, "wiz.reply_hint")
    if (old := data.get("prompt")) is not None and message.bot is not None:
        await drop_buttons(message.bot, message.chat.id, int(old))
    sent = await message.answer(body, reply_markup=markup)
    await state.update_data(prompt=sent.message_id)


# -- new task ----------------------------------------------------------------------------------


async def start_new(message: Message, state: FSMContext, lang: str) -> None:
    """Begin the new-task dialog (what a bare /new does)."""
    await state.clear()
    await state.set_state(NewTask.title)
    markup = wizard_keyboard("title", lang, skip=False)
    await _prompt(message, state, text(lang, "wiz.title"), markup, lang)


async def new_title(message: Message, state: FSMContext, lang: str) -> None:
    title = " ".join((message.text or "").split())
    if len(title) > MAX_TITLE:
        raise InputError(f"title longer than {MAX_TITLE}", code="too_long")
    await state.update_data(title=title)
    await state.set_state(NewTask.deadline)
    markup = wizard_keyboard("deadline", lang, skip=True)
    await _prompt(message, state, text(lang, "wiz.deadline"), markup, lang)


async def new_deadline(
    message: Message, state: FSMContext, lang: str, tz: ZoneInfo, clock: Clock
) -> None:
    when = parse_when(message.text or "", now=clock(), tz=tz)
    deadline = when.deadline.isoformat() if when.deadline else None
    await state.update_data(deadline=deadline, recurrence=when.recurrence)
    await _ask_extras(message, state, lang)


async def _ask_extras(message: Message, state: FSMContext, lang: str) -> None:
    await state.set_state(NewTask.extras)
    markup = wizard_keyboard("extras", lang, skip=True)
    await _prompt(message, state, text(lang, "wiz.extras"), markup, lang)


async def new_extras(
    message: Message,
    state: FSMContext,
    orch: EnterpriseTaskOrchestrator,
    lang: str,
    tz: ZoneInfo,
    clock: Clock,
) -> None:
    tags, priority = parse_extras(message.text or "")
    await _create(message, message.from_user, state, orch, lang, tz, clock(), tags, priority)


async def _create(
    message: Message,
    user: User | None,
    state: FSMContext,
    orch: EnterpriseTaskOrchestrator,
    lang: str,
    tz: ZoneInfo,
    now: datetime,
    tags: tuple[str, ...] = (),
    priority: int | None = None,
) -> None:
    data = await state.get_data()
    task = await orch.create_task(
        str(data.get("title", "")),
        priority=priority or 3,
        deadline=data.get("deadline"),
        tags=tags,
        chat_id=message.chat.id,
        author_id=user.id if user else None,
        recurrence=data.get("recurrence"),
    )
    await _finish(message, state)
    await reply_created(message, task, lang, tz, now)


async def reply_created(
    message: Message, task: Task, lang: str, tz: ZoneInfo, now: datetime
) -> None:
    """The answer to a new task, however it was made: the card with its buttons."""
    details = task_details(task, lang, tz, now)
    body = text(lang, "created", id=task.id, title=esc(task.title), details=details)
    await message.answer(body, reply_markup=task_keyboard(task, lang))


async def _finish(message: Message, state: FSMContext) -> None:
    prompt = (await state.get_data()).get("prompt")
    await state.clear()
    if prompt is not None and message.bot is not None:
        await drop_buttons(message.bot, message.chat.id, int(prompt))


# -- buttons and /cancel -------------------------------------------------------------------------


async def wizard_button(
    query: CallbackQuery,
    callback_data: WizardStep,
    state: FSMContext,
    orch: EnterpriseTaskOrchestrator,
    lang: str,
    tz: ZoneInfo,
    clock: Clock,
) -> None:
    """Skip or Cancel, only on the step the user is on."""
    message = query.message
    current = await state.get_state()
    if not isinstance(message, Message) or _step(current) != callback_data.step:
        await query.answer(text(lang, "stale_button"))
        return
    if callback_data.action == "cancel":
        await _finish(message, state)
        await edit(message, text(lang, "cancelled"))
        await query.answer()
        return
    await query.answer()
    if current == NewTask.deadline.state:
        await state.update_data(deadline=None, recurrence=None)
        await _ask_extras(message, state, lang)
    elif current == NewTask.extras.state:
        await _create(message, query.from_user, state, orch, lang, tz, clock())


async def cancel(message: Message, state: FSMContext, lang: str) -> None:
    if await state.get_state() is None:
        await message.answer(text(lang, "nothing_to_cancel"))
        return
    await _finish(message, state)
    await message.answer(text(lang, "cancelled"))


# -- editing -------------------------------------------------------------------------------------


async def begin_edit(message: Message, state: FSMContext, task: Task, lang: str) -> None:
    """Ask which field of `task` to change (the caller checked the user may)."""
    await state.clear()
    await state.set_state(EditTask.field)
    await state.update_data(task_id=task.id)
    body = text(lang, "edit_pick", id=task.id, title=esc(task.title))
    await _prompt(message, state, body, field_keyboard(task.id, lang), lang)


async def ask_value(
    message: Message, state: FSMContext, task: Task, field: Field, lang: str
) -> None:
    """Ask for the new value of one field."""
    await state.set_state(EditTask.value)
    await state.update_data(task_id=task.id, field=field.value)
    body = text(lang, f"ask.{field.value}", id=task.id)
    await _prompt(message, state, body, wizard_keyboard("value", lang, skip=False), lang)


async def edit_button(
    query: CallbackQuery,
    callback_data: TaskAction,
    state: FSMContext,
    orch: EnterpriseTaskOrchestrator,
    bot: Bot,
    lang: str,
) -> None:
    """The card's Edit button opens the field picker."""
    message = await button_message(query, lang)
    if message is None:
        return
    task = await task_to_press(query, message, orch, bot, callback_data.task_id, lang)
    if task is None:
        return
    await query.answer()
    await begin_edit(message, state, task, lang)


async def field_button(
    query: CallbackQuery,
    callback_data: EditField,
    state: FSMContext,
    orch: EnterpriseTaskOrchestrator,
    bot: Bot,
    lang: str,
) -> None:
    message = query.message
    data = await state.get_data()
    current = await state.get_state()
    if (
        not isinstance(message, Message)
        or current != EditTask.field.state
        or data.get("task_id") != callback_data.task_id
    ):
        await query.answer(text(lang, "stale_button"))
        return
    task = await task_for_change(
        orch, bot, message.chat, query.from_user, callback_data.task_id, lang
    )
    if isinstance(task, str):
        await _finish(message, state)
        await query.answer(plain(task), show_alert=True)
        return
    await query.answer()
    await ask_value(message, state, task, callback_data.field, lang)


async def edit_value(
    message: Message,
    state: FSMContext,
    orch: EnterpriseTaskOrchestrator,
    bot: Bot,
    lang: str,
    tz: ZoneInfo,
    clock: Clock,
) -> None:
    data = await state.get_data()
    task = await task_for_change(
        orch, bot, message.chat, message.from_user, int(data["task_id"]), lang
    )
    if isinstance(task, str):
        await _finish(message, state)
        await message.answer(task)
        return
    now = clock()
    # A bad value raises here, before the dialog ends: the user can simply try again.
    values = edit_values(Field(data["field"]), message.text or "", now=now, tz=tz)
    await _finish(message, state)
    await apply_edit(message, orch, task, values, lang, tz, now)


async def apply_edit(
    message: Message,
    orch: EnterpriseTaskOrchestrator,
    task: Task,
    values: dict[str, object],
    lang: str,
    tz: ZoneInfo,
    now: datetime,
) -> None:
    """Write the change (`bot.fields.edit_values`) and show the result."""
    task = await orch.update_task(task.id, chat_id=task.chat_id, **values)
    details = task_details(task, lang, tz, now)
    body = text(lang, "edited", id=task.id, title=esc(task.title), details=details)
    await message.answer(body, reply_markup=task_keyboard(task, lang))


def build_router() -> Router:
    """A fresh router per dispatcher: an aiogram router belongs to one parent only.

    LIMIT: dialog state lives in the dispatcher's MemoryStorage, so a restart forgets every
    dialog in progress (the user sees "out of date" on its buttons and starts again). Redis
    storage (aiogram's RedisStorage, the `postgres` extra installs redis) would keep it.
    """
    router = Router(name="wizard")
    router.message.register(cancel, Command("cancel"))
    router.message.register(new_title, NewTask.title, _ANSWER)
    router.message.register(new_deadline, NewTask.deadline, _ANSWER)
    router.message.register(new_extras, NewTask.extras, _ANSWER)
    router.message.register(edit_value, EditTask.value, _ANSWER)
    router.callback_query.register(wizard_button, WizardStep.filter())
    router.callback_query.register(edit_button, TaskAction.filter(F.action == Verb.EDIT))
    router.callback_query.register(field_button, EditField.filter())
    return router
