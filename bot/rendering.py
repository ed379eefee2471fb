"""Task -> chat text. All user text passes through `html.escape` here, once."""

from __future__ import annotations

import html
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.texts import text
from core.models import Task, TaskStatus

MESSAGE_LIMIT = 4096  # Telegram's hard cap on one message's text


def esc(value: str) -> str:
    return html.escape(value, quote=False)


def when(deadline: datetime, tz: ZoneInfo) -> str:
    """'Sat 05.12 18:00' in the reader's zone."""
    return deadline.astimezone(tz).strftime("%a %d.%m %H:%M")


def task_details(task: Task, lang: str, tz: ZoneInfo) -> str:
    parts: list[str] = []
    if task.deadline:
        parts.append(text(lang, "due", when=when(task.deadline, tz)))
    if task.priority != 3:
        parts.append(text(lang, "priority", p=task.priority))
    parts += [f"#{esc(tag)}" for tag in task.tags]
    if task.assignee:
        parts.append("@" + esc(task.assignee))
    return "\n" + " · ".join(parts) if parts else ""


def task_line(task: Task, tz: ZoneInfo) -> str:
    mark = "✔️" if task.status is TaskStatus.DONE else "▫️"
    line = f"{mark} <b>#{task.id}</b> {esc(task.title)}"
    if task.deadline:
        line += f" — {when(task.deadline, tz)}"
    if task.priority <= 2:
        line += f" !{task.priority}"
    if task.tags:
        line += " " + " ".join(f"#{esc(t)}" for t in task.tags)
    return line


def split_message(body: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Cut a long reply at line boundaries so each part fits one message."""
    parts: list[str] = []
    current = ""
    for line in body.split("\n"):
        while len(line) > limit:  # a single overlong line: hard cut
            if current:
                parts.append(current)
                current = ""
            parts.append(line[:limit])
            line = line[limit:]
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) > limit:
            parts.append(current)
            current = line
        else:
            current = candidate
    if current:
        parts.append(current)
    return parts
