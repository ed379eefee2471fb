"""Task -> chat text. All user text passes through `html.escape` here, once.

`split_message` keeps every part of a long reply valid Telegram HTML: it cuts at line
boundaries where it can, never inside a tag or an entity, and closes the tags still open at a
cut and opens them again at the top of the next part.
"""

from __future__ import annotations

import html
import re
from collections import deque
from datetime import datetime
from zoneinfo import ZoneInfo

from bot.texts import text
from core.models import Task, TaskStatus
from core.quickadd import Recurrence

MESSAGE_LIMIT = 4096  # Telegram's hard cap on one message's text
TITLE_IN_LIST = 120  # characters of a title shown in a list line; the card shows all of it

_ATOM = re.compile(r"</?[a-zA-Z][\w-]*(?:\s[^<>]*)?>|&#?\w+;|\n|[^<&\n]+|[<&]")
_TAG = re.compile(r"<(/?)([a-zA-Z][\w-]*)")


def esc(value: str) -> str:
    return html.escape(value, quote=False)


def when(deadline: datetime, tz: ZoneInfo, lang: str, now: datetime | None = None) -> str:
    """'Sat 05.12 18:00' in the reader's zone; the year is added when it is not this one."""
    local = deadline.astimezone(tz)
    day = text(lang, "weekdays").split()[local.weekday()]
    year = now is not None and now.astimezone(tz).year != local.year
    return f"{day} {local:%d.%m.%Y %H:%M}" if year else f"{day} {local:%d.%m %H:%M}"


def task_details(task: Task, lang: str, tz: ZoneInfo, now: datetime | None = None) -> str:
    """The line under a title: deadline, priority, tags, assignee (empty when none)."""
    parts: list[str] = []
    if task.deadline:
        parts.append(text(lang, "due", when=when(task.deadline, tz, lang, now)))
        if now is not None and task.status is TaskStatus.OPEN and task.deadline < now:
            parts[-1] += f" ⚠️ {text(lang, 'overdue_mark')}"
    if task.recurrence:
        parts.append(repeat_text(task.recurrence, lang))
    if task.priority != 3:
        parts.append(text(lang, "priority", p=task.priority))
    parts += [f"#{esc(tag)}" for tag in task.tags]
    if task.assignee:
        parts.append("@" + esc(task.assignee))
    return "\n" + " · ".join(parts) if parts else ""


def repeat_text(rule: str, lang: str) -> str:
    """'🔁 every Mon 09:00' for a stored rule; a rule this version cannot read says so."""
    try:
        repeat = Recurrence.from_text(rule)
    except ValueError:
        return text(lang, "repeat.unknown")
    at = f"{repeat.hour:02d}:{repeat.minute:02d}"
    if repeat.weekday is not None:
        day = text(lang, "weekdays").split()[repeat.weekday]
        return text(lang, "repeat.weekly", day=day, time=at)
    if repeat.day_of_month is not None:
        return text(lang, "repeat.monthly", day=repeat.day_of_month, time=at)
    return text(lang, "repeat.daily", time=at)


def task_card(task: Task, lang: str, tz: ZoneInfo, now: datetime | None = None) -> str:
    """The full view of one task, as /task shows it."""
    body = text(
        lang, "card", id=task.id, title=esc(task.title), details=task_details(task, lang, tz, now)
    )
    if task.description:
        body += f"\n\n{esc(task.description)}"
    if task.status is not TaskStatus.OPEN:
        status = text(lang, f"status.{task.status.value}")
        body += "\n" + text(lang, "card_status", status=status)
    return body


def task_line(task: Task, tz: ZoneInfo, lang: str = "en", now: datetime | None = None) -> str:
    """One task in a list: mark, id, title (shortened), deadline, urgency, tags."""
    mark = "✔️" if task.status is TaskStatus.DONE else "▫️"
    title = task.title if len(task.title) <= TITLE_IN_LIST else task.title[:TITLE_IN_LIST] + "…"
    line = f"{mark} <b>#{task.id}</b> {esc(title)}"
    if task.deadline:
        line += f" — {when(task.deadline, tz, lang, now)}"
        if now is not None and task.status is TaskStatus.OPEN and task.deadline < now:
            line += " ⚠️"
    if task.priority <= 2:
        line += f" !{task.priority}"
    if task.tags:
        line += " " + " ".join(f"#{esc(t)}" for t in task.tags)
    if task.assignee:
        line += f" @{esc(task.assignee)}"
    return line


def plain(body: str) -> str:
    """HTML reply -> plain text, for places without markup (button answers, alerts)."""
    return html.unescape(re.sub(r"<[^<>]*>", "", body))


def utf16_len(value: str) -> int:
    """Length as Telegram counts it: characters outside the BMP (most emoji) count twice."""
    return len(value) + sum(1 for char in value if ord(char) > 0xFFFF)


def split_message(body: str, limit: int = MESSAGE_LIMIT) -> list[str]:
    """Cut a long HTML reply into parts of at most `limit` UTF-16 units, at lines if possible."""
    parts = (part.strip("\n") for part in _Splitter(limit).run(body))
    return [part for part in parts if _visible(part).strip()]


def _visible(part: str) -> str:
    return re.sub(r"<[^<>]*>", "", part)


class _Splitter:
    """Greedy packer over atoms (tags, entities, newlines, text runs) with a stack of tags."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.parts: list[str] = []
        self.stack: list[tuple[str, str]] = []  # (name, opening tag) at the current position
        self.part: list[str] = []
        self.size = 0
        self.content = False  # the current part holds more than reopened tags
        # Where the last newline of the part sits, and the tags open there: the preferred cut.
        self.newline: tuple[int, list[tuple[str, str]]] | None = None

    def run(self, body: str) -> list[str]:
        atoms = deque(m[0] for m in _ATOM.finditer(body))
        while atoms:
            atom = atoms.popleft()
            stack = self._after(atom)
            room = self.limit - self.size - _closers_len(stack)
            if utf16_len(atom) <= room or (not self.content and not self._is_text(atom)):
                self._take(atom, stack)
            elif atom == "\n":  # the line ends exactly at the limit: cut here, drop the break
                self._flush(self.stack)
            elif self.newline is not None:
                atoms.appendleft(atom)
                self._cut_at_newline()
            elif self._is_text(atom) and (head := _prefix(atom, room)):
                atoms.appendleft(atom[len(head) :])
                self._take(head, stack)
                self._flush(self.stack)
            elif self.content:
                atoms.appendleft(atom)
                self._flush(self.stack)
            else:  # a text atom that cannot fit even into an empty part: give it its own
                self._take(atom, stack)
        if self.content:
            self._flush(self.stack)
        return self.parts

    @staticmethod
    def _is_text(atom: str) -> bool:
        return not atom.startswith(("<", "&")) and atom != "\n"

    def _after(self, atom: str) -> list[tuple[str, str]]:
        m = _TAG.match(atom) if atom.startswith("<") else None
        if m is None:
            return self.stack
        if not m[1]:
            return [*self.stack, (m[2].lower(), atom)]
        name = m[2].lower()
        return self.stack[:-1] if self.stack and self.stack[-1][0] == name else self.stack

    def _take(self, atom: str, stack: list[tuple[str, str]]) -> None:
        self.part.append(atom)
        self.size += utf16_len(atom)
        if atom == "\n":
            self.newline = (len(self.part) - 1, list(self.stack))
        elif self._is_text(atom) or atom.startswith("&"):
            self.content = True
        self.stack = stack

    def _cut_at_newline(self) -> None:
        assert self.newline is not None
        index, stack = self.newline
        head, tail = self.part[:index], self.part[index + 1 :]
        self.part = head
        self._flush(stack)
        for atom in tail:  # no newline among them: the cut was at the last one
            self._take(atom, self._after(atom))

    def _flush(self, stack: list[tuple[str, str]]) -> None:
        """End the current part with closers for `stack`; the next part reopens them."""
        closers = "".join(f"</{name}>" for name, _ in reversed(stack))
        self.parts.append("".join(self.part) + closers)
        self.part = [opener for _, opener in stack]
        self.size = sum(utf16_len(opener) for opener in self.part)
        self.stack = list(stack)
        self.content = False
        self.newline = None


def _closers_len(stack: list[tuple[str, str]]) -> int:
    return sum(len(name) + 3 for name, _ in stack)


def _prefix(run: str, room: int) -> str:
    """The longest start of a plain text run that fits into `room` UTF-16 units."""
    used = 0
    for index, char in enumerate(run):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > room:
            return run[:index]
    return run
