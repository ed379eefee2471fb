"""Tasks with deadlines as an iCalendar file (RFC 5545) that calendar apps import.

Each task is a VEVENT that starts at its deadline, in UTC (`...Z`), so no VTIMEZONE is
needed. Text values are escaped (backslash, semicolon, comma, newline) and every content
line longer than 75 octets is folded with CRLF and one space, never inside a UTF-8
character. UIDs are `<task uid>@taskbot`, so importing a newer export updates the same
events instead of adding copies.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime, timedelta

from core.models import Task, TaskStatus

PRODID = "-//taskbot//taskbot tasks 0.1//EN"
EVENT_LENGTH = timedelta(minutes=30)  # same span as the CalDAV events
LINE_OCTETS = 75  # RFC 5545 3.1: lines SHOULD NOT be longer than 75 octets, CRLF excluded
DONE_MARK = "✔ "
# Task priority 1 (most urgent) .. 5 onto iCalendar's 1 (highest) .. 9 (lowest).
_PRIORITY = {1: 1, 2: 3, 3: 5, 4: 7, 5: 9}


def escape_text(value: str) -> str:
    """A TEXT value as RFC 5545 3.3.11 wants it: \\\\, \\;, \\, and \\n escaped."""
    value = value.replace("\r\n", "\n").replace("\r", "\n")
    value = value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,")
    return value.replace("\n", "\\n")


def utc_stamp(moment: datetime) -> str:
    """A DATE-TIME in UTC form: 20261205T150000Z."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


def fold(line: str) -> str:
    """One content line folded into 75-octet pieces, each continuation led by a space."""
    encoded = line.encode("utf-8")
    if len(encoded) <= LINE_OCTETS:
        return line
    pieces: list[str] = []
    current = ""
    size = 0
    room = LINE_OCTETS
    for char in line:
        width = len(char.encode("utf-8"))
        if size + width > room:
            pieces.append(current)
            current, size = "", 0
            room = LINE_OCTETS - 1  # the leading space of a continuation counts
        current += char
        size += width
    pieces.append(current)
    return "\r\n ".join(pieces)


def _event(task: Task, now: datetime) -> list[str]:
    assert task.deadline is not None
    summary = task.title if task.status is not TaskStatus.DONE else DONE_MARK + task.title
    lines = [
        "BEGIN:VEVENT",
        f"UID:{task.uid}@taskbot",
        f"DTSTAMP:{utc_stamp(now)}",
        f"CREATED:{utc_stamp(task.created_at)}",
        f"LAST-MODIFIED:{utc_stamp(task.updated_at)}",
        f"DTSTART:{utc_stamp(task.deadline)}",
        f"DTEND:{utc_stamp(task.deadline + EVENT_LENGTH)}",
        f"SUMMARY:{escape_text(' '.join(summary.split()))}",
    ]
    notes = task.description.strip()
    facts = f"#{task.id} · priority {task.priority}"
    description = notes + "\n\n" + facts if notes else facts
    lines.append(f"DESCRIPTION:{escape_text(description)}")
    if task.tags:
        lines.append("CATEGORIES:" + ",".join(escape_text(tag) for tag in task.tags))
    lines.append(f"PRIORITY:{_PRIORITY.get(task.priority, 0)}")
    lines.append("STATUS:CONFIRMED")
    lines.append("TRANSP:TRANSPARENT")  # a deadline does not make the person busy
    lines.append("END:VEVENT")
    return lines


def tasks_to_ics(tasks: Iterable[Task], *, now: datetime, name: str = "taskbot") -> bytes:
    """The calendar file of the tasks that have a deadline (others are left out)."""
    lines = [
        "BEGIN:VCALENDAR",
        "VERSION:2.0",
        f"PRODID:{PRODID}",
        "CALSCALE:GREGORIAN",
        "METHOD:PUBLISH",
        f"X-WR-CALNAME:{escape_text(name)}",
    ]
    dated = sorted((t for t in tasks if t.deadline is not None), key=lambda t: (t.deadline, t.id))
    for task in dated:
        lines += _event(task, now)
    lines.append("END:VCALENDAR")
    return ("\r\n".join(fold(line) for line in lines) + "\r\n").encode("utf-8")
