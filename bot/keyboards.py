"""Inline keyboards and their callback data.

Every callback data class has a versioned prefix (`t1`, `l1`, ...) and packs well under
Telegram's 64 bytes; its fields are typed, so a press whose data does not parse (an old
layout, a forged client) matches no handler and gets the catch-all's short answer. Bump a
prefix when its layout changes: old buttons then go stale instead of doing something else.
"""

from __future__ import annotations

from enum import StrEnum

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.fields import Field
from bot.texts import text
from core.models import Task, TaskStatus
from core.queries import TaskPage, View

CARDS_PER_ROW = 5  # task buttons under a list; ten per page make two rows


class Verb(StrEnum):
    """What a task button does."""

    CARD = "card"
    DONE = "done"
    SNOOZE = "snooze"
    TIMER = "timer"
    EDIT = "edit"
    DELETE = "del"  # asks first
    CONFIRM_DELETE = "delok"
    KEEP = "keep"


class TaskAction(CallbackData, prefix="t1"):
    """`t1:<verb>:<task id>`, e.g. `t1:done:12`."""

    action: Verb
    task_id: int


class ListPage(CallbackData, prefix="l1"):
    """`l1:<view>:<page>:<tag key>`; a tag travels as a short hash (`core.queries.tag_key`)."""

    view: View
    page: int
    tag: str = ""


class WizardStep(CallbackData, prefix="w1"):
    """`w1:<skip|cancel>:<step>`; the step must be the one the user is on, else it is stale."""

    action: str
    step: str


class EditField(CallbackData, prefix="e1"):
    """`e1:<task id>:<field>` in the edit wizard's field picker."""

    task_id: int
    field: Field


def _button(key: str, lang: str, data: CallbackData, **values: object) -> InlineKeyboardButton:
    return InlineKeyboardButton(text=text(lang, key, **values), callback_data=data.pack())


def task_keyboard(task: Task, lang: str) -> InlineKeyboardMarkup:
    """The card's buttons: an open task can be finished, moved, timed, edited or deleted."""

    def act(key: str, verb: Verb) -> InlineKeyboardButton:
        return _button(key, lang, TaskAction(action=verb, task_id=task.id))

    if task.status is not TaskStatus.OPEN:
        return InlineKeyboardMarkup(inline_keyboard=[[act("btn_delete", Verb.DELETE)]])
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [act("btn_done", Verb.DONE), act("btn_snooze", Verb.SNOOZE)],
            [act("btn_timer", Verb.TIMER), act("btn_edit", Verb.EDIT)],
            [act("btn_delete", Verb.DELETE)],
        ]
    )


def confirm_delete_keyboard(task_id: int, lang: str) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                _button(
                    "btn_confirm_delete",
                    lang,
                    TaskAction(action=Verb.CONFIRM_DELETE, task_id=task_id),
                ),
                _button("btn_keep", lang, TaskAction(action=Verb.KEEP, task_id=task_id)),
            ]
        ]
    )


def list_keyboard(page: TaskPage, view: View, tag: str, lang: str) -> InlineKeyboardMarkup:
    """A button per task, paging when there is more than one page, and the other views."""
    rows: list[list[InlineKeyboardButton]] = []
    cards = [
        InlineKeyboardButton(
            text=f"#{t.id}", callback_data=TaskAction(action=Verb.CARD, task_id=t.id).pack()
        )
        for t in page.tasks
    ]
    rows += [cards[i : i + CARDS_PER_ROW] for i in range(0, len(cards), CARDS_PER_ROW)]
    if page.pages > 1:
        nav: list[InlineKeyboardButton] = []
        if page.page > 0:
            nav.append(_button("btn_prev", lang, ListPage(view=view, page=page.page - 1, tag=tag)))
        counter = ListPage(view=view, page=page.page, tag=tag)
        nav.append(_button("page", lang, counter, page=page.page + 1, pages=page.pages))
        if page.page < page.pages - 1:
            nav.append(_button("btn_next", lang, ListPage(view=view, page=page.page + 1, tag=tag)))
        rows.append(nav)
    views = [
        (View.OPEN, "btn_open"),
        (View.TODAY, "btn_today"),
        (View.OVERDUE, "btn_overdue"),
        (View.ALL, "btn_all"),
    ]
    rows.append([_button(key, lang, ListPage(view=v, page=0)) for v, key in views if v != view])
    return InlineKeyboardMarkup(inline_keyboard=rows)


def wizard_keyboard(step: str, lang: str, *, skip: bool) -> InlineKeyboardMarkup:
    row = [_button("btn_skip", lang, WizardStep(action="skip", step=step))] if skip else []
    row.append(_button("btn_cancel", lang, WizardStep(action="cancel", step=step)))
    return InlineKeyboardMarkup(inline_keyboard=[row])


def field_keyboard(task_id: int, lang: str) -> InlineKeyboardMarkup:
    buttons = [
        _button(f"field.{f.value}", lang, EditField(task_id=task_id, field=f)) for f in Field
    ]
    rows = [buttons[i : i + 2] for i in range(0, len(buttons), 2)]
    rows.append([_button("btn_cancel", lang, WizardStep(action="cancel", step="field"))])
    return InlineKeyboardMarkup(inline_keyboard=rows)


class RemindAction(CallbackData, prefix="r1"):
    """`r1:<done|s15|s60|tmr>:<task id>` on reminder cards; bump the prefix on layout changes."""

    action: str
    task_id: int


def reminder_keyboard(task: Task, lang: str) -> InlineKeyboardMarkup:
    """Done, and snooze for 15 min, 1 h or until tomorrow morning."""

    def button(key: str, action: str) -> InlineKeyboardButton:
        data = RemindAction(action=action, task_id=task.id).pack()
        return InlineKeyboardButton(text=text(lang, key), callback_data=data)

    return InlineKeyboardMarkup(
        inline_keyboard=[
            [button("btn_done", "done")],
            [
                button("btn_snooze_15", "s15"),
                button("btn_snooze_60", "s60"),
                button("btn_snooze_tomorrow", "tmr"),
            ],
        ]
    )
