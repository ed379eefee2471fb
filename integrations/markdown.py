"""A task as a Markdown file, shared by the filesystem and git integrations.

The rendering is a pure function of the task: the same task always gives the same bytes, so a
replayed change rewrites an identical file and git finds nothing to commit.
"""

from __future__ import annotations

import json
from datetime import datetime

from core.models import Task

#: Longest title kept in a one-line context (heading, commit subject).
TITLE_CHARS = 120


def one_line_title(title: str, limit: int = TITLE_CHARS) -> str:
    """The title on one line: newlines and runs of spaces collapsed, clipped to `limit`."""
    line = " ".join(title.split()) or "(untitled)"
    return line if len(line) <= limit else line[: limit - 1] + "…"


def task_path(uid: str) -> str:
    """Where a task's file lives, relative to the integration's root directory."""
    return f"tasks/{uid}.md"


def render_task(task: Task) -> str:
    """Front matter for programs (JSON scalars, valid YAML), then a heading and the body."""
    fields: dict[str, object] = {
        "uid": task.uid,
        "id": task.id,
        "status": task.status.value,
        "priority": task.priority,
        "deadline": _iso(task.deadline),
        "tags": list(task.tags),
        "assignee": task.assignee,
        "created": _iso(task.created_at),
        "updated": _iso(task.updated_at),
        "version": task.version,
    }
    lines = ["---"]
    lines += [f"{key}: {json.dumps(value, ensure_ascii=False)}" for key, value in fields.items()]
    lines += ["---", "", f"# {one_line_title(task.title, limit=len(task.title) + 1)}", ""]
    body = task.description.strip()
    if body:
        lines += [body, ""]
    return "\n".join(lines)


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment is not None else None
