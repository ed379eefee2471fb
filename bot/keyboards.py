"""Inline keyboards and their callback data (versioned prefix, well under 64 bytes)."""

from __future__ import annotations

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.texts import text
from core.models import Task, TaskStatus


class TaskAction(CallbackData, prefix="t1"):
    """`t1:<action>:<task id>`; bump the prefix when the layout changes, old buttons go stale."""

    action: str
    task_id: int


def task_keyboard(task: Task, lang: str) -> InlineKeyboardMarkup | None:
    if task.status is not TaskStatus.OPEN:
        return None
    return InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=text(lang, "btn_done"),
                    callback_data=TaskAction(action="done", task_id=task.id).pack(),
                ),
                InlineKeyboardButton(
                    text=text(lang, "btn_delete"),
                    callback_data=TaskAction(action="del", task_id=task.id).pack(),
                ),
            ]
        ]
    )
