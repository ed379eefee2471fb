"""Deadlines as calendar events, through caldav-mcp, on a Radicale this integration runs itself.

Contract:
- Offline default: `start()` writes a Radicale config under `<state>/radicale`, starts
  `python -m radicale` on a free loopback port as a child it owns, waits until it answers,
  creates the `taskbot` user's `tasks` calendar with one MKCALENDAR when it is missing, and
  only then launches caldav-mcp (which exits at once when its CalDAV server is not there).
  `close()` stops caldav-mcp first, then Radicale (SIGTERM, SIGKILL after a grace) and reaps
  it. Radicale also watches its parent and stops when the bot dies without closing it.
- External: a config entry whose `env` names `CALDAV_BASE_URL` (password as
  `"${CALDAV_PASSWORD}"`), or that gives its own `command` or an HTTP `url`, gets no Radicale;
  its calendar must exist (`CALDAV_CALENDAR_URL`, default `/<CALDAV_USERNAME>/tasks/`).
- One task with a deadline is one event that starts at the deadline. Its description ends
  with `taskbot-uid: <task uid>`: a replayed create and `/calendar` find the task by it; the
  server's event uid is the link. A moved deadline moves the event, done marks it (a check
  mark in the summary), deleting the task or clearing its deadline removes the event, and a
  task without a deadline makes none and returns quietly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import signal
import socket
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp

from core.errors import ServerUnavailable, ToolFailed
from core.models import Change, Task, TaskStatus
from core.settings import ServerConfig, resolve_env
from integrations.markdown import one_line_title
from integrations.mcp.integration import McpIntegration, snapshot
from integrations.mcp.launch import Launch, make_handle, node_server

log = logging.getLogger("taskbot.calendar")

LOCAL_USER = "taskbot"
CALENDAR_NAME = "tasks"
EVENT_LENGTH = timedelta(minutes=30)  # a deadline is a moment; calendars need a span to show
#: How far around the deadline a replayed create looks for the event it may have made.
FIND_WINDOW = timedelta(days=1)
#: How far around now `locate()` looks for an event (it knows no deadline).
LOCATE_WINDOW = timedelta(days=400)
DONE_MARK = "✔ "
MARKER = "taskbot-uid: "
RADICALE_READY_S = 15.0  # bounds Radicale's start; it answers in about half a second here
RADICALE_STOP_S = 5.0  # grace after SIGTERM before SIGKILL
PORT_ATTEMPTS = 3  # a free port can be taken between choosing it and Radicale binding it
_MARKER_LINE = re.compile(rf"^{re.escape(MARKER)}([0-9a-zA-Z_-]+)\s*$", re.MULTILINE)
# What caldav-mcp says when the event is not there (update, then delete's ETag lookup).
_GONE = ("Event not found", "Failed to retrieve ETag", "ETag not found")
# What it says when the CalDAV server cannot be reached: worth a retry, not a dead letter.
_UNREACHABLE = ("ECONNREFUSED", "ECONNRESET", "ETIMEDOUT", "ENOTFOUND", "socket hang up")

# Runs Radicale in a child that stops itself when its parent goes away, so a bot killed with
# SIGKILL leaves no server behind. Radicale turns SIGTERM into a clean shutdown.
_RADICALE_MAIN = """
import os, runpy, signal, sys, threading, time
parent = os.getppid()
def watch():
    while os.getppid() == parent:
        time.sleep(0.5)
    os.kill(os.getpid(), signal.SIGTERM)
threading.Thread(target=watch, daemon=True).start()
sys.argv = ["radicale", *sys.argv[1:]]
runpy.run_module("radicale", run_name="__main__", alter_sys=True)
"""

_MKCALENDAR_BODY = (
    '<?xml version="1.0" encoding="utf-8"?>'
    '<C:mkcalendar xmlns:D="DAV:" xmlns:C="urn:ietf:params:xml:ns:caldav">'
    "<D:set><D:prop><D:displayname>Tasks</D:displayname></D:prop></D:set>"
    "</C:mkcalendar>"
)


@dataclass(frozen=True, slots=True)
class CalendarEvent:
    """One event as the calendar server lists it; `task_uid` when taskbot made it."""

    uid: str
    summary: str
    start: datetime
    end: datetime
    task_uid: str | None
    done: bool


def event_description(task: Task) -> str:
    """The event's notes: the task's description, a facts line, and the uid marker last."""
    facts = [f"#{task.id}", f"priority {task.priority}"]
    facts += [f"#{tag}" for tag in task.tags]
    if task.status is TaskStatus.DONE:
        facts.append("done")
    body = task.description.strip()
    head = f"{body}\n\n" if body else ""
    return f"{head}{' · '.join(facts)}\n{MARKER}{task.uid}"


def event_summary(task: Task) -> str:
    title = one_line_title(task.title, limit=len(task.title) + 1)
    return f"{DONE_MARK}{title}" if task.status is TaskStatus.DONE else title


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _instant(value: object) -> datetime:
    text = str(value).replace("Z", "+00:00")
    moment = datetime.fromisoformat(text)
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def parse_event(raw: dict[str, Any]) -> CalendarEvent:
    """An event from caldav-mcp's `list-events` JSON."""
    found = _MARKER_LINE.search(str(raw.get("description") or ""))
    summary = str(raw.get("summary") or "")
    return CalendarEvent(
        uid=str(raw["uid"]),
        summary=summary.removeprefix(DONE_MARK),
        start=_instant(raw["start"]),
        end=_instant(raw.get("end") or raw["start"]),
        task_uid=found.group(1) if found else None,
        done=summary.startswith(DONE_MARK),
    )


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RadicaleProcess:
    """A Radicale child on 127.0.0.1 with auth none and storage under `root`."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.port: int | None = None
        self._process: asyncio.subprocess.Process | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.returncode is None

    @property
    def pid(self) -> int | None:
        return self._process.pid if self.alive and self._process is not None else None

    async def start(self) -> None:
        """Start on the last port (a restart keeps the URL) or a free one; wait until it answers."""
        for attempt in range(PORT_ATTEMPTS):
            if self.port is None or attempt > 0:
                self.port = _free_port()
            if await self._spawn():
                return
        raise ServerUnavailable(f"radicale did not start: {self._log_tail()}", server="calendar")

    async def _spawn(self) -> bool:
        self.root.mkdir(parents=True, exist_ok=True)
        config = self.root / "radicale.conf"
        config.write_text(self._config(), encoding="utf-8")
        with (self.root / "radicale.log").open("ab") as errors:
            self._process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _RADICALE_MAIN,
                "--config",
                str(config),
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.DEVNULL,
                stderr=errors,
                start_new_session=True,  # the terminal's Ctrl-C goes to us; we stop it in order
            )
        began = time.monotonic()
        async with aiohttp.ClientSession() as http:
            while time.monotonic() - began < RADICALE_READY_S:
                if not self.alive:
                    await self.stop()
                    return False
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    async with http.get(self.url + ".well-known/caldav", allow_redirects=False):
                        log.info("radicale.started", extra={"pid": self.pid, "port": self.port})
                        return True
                await asyncio.sleep(0.05)
        await self.stop()
        return False

    def _config(self) -> str:
        storage = self.root / "collections"
        return (
            "[server]\n"
            f"hosts = 127.0.0.1:{self.port}\n"
            "[auth]\ntype = none\n"
            "[rights]\ntype = owner_only\n"
            f"[storage]\nfilesystem_folder = {storage}\n"
            "[web]\ntype = none\n"
            "[logging]\nlevel = warning\n"
        )

    def _log_tail(self) -> str:
        try:
            lines = (self.root / "radicale.log").read_text(errors="replace").splitlines()
        except OSError:
            return "no log"
        return " | ".join(lines[-3:])[-400:] or "no output"

    async def stop(self) -> None:
        """SIGTERM, then SIGKILL after a grace; returns once the child is reaped."""
        process = self._process
        if process is None or process.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), RADICALE_STOP_S)
        except TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
        log.info("radicale.stopped", extra={"pid": process.pid, "returncode": process.returncode})


class CalendarIntegration(McpIntegration):
    """Keeps one event per task deadline in a CalDAV calendar, via caldav-mcp."""

    name = "calendar"

    def __init__(self, config: ServerConfig | None = None, data_dir: Path | None = None) -> None:
        config = config if config is not None else ServerConfig()
        env = {key: resolve_env(value) for key, value in config.env.items()}
        self.external = bool(
            env.get("CALDAV_BASE_URL") or config.command is not None or config.transport == "http"
        )
        self.user = env.get("CALDAV_USERNAME") or LOCAL_USER
        self.calendar_url = env.get("CALDAV_CALENDAR_URL") or f"/{self.user}/{CALENDAR_NAME}/"
        super().__init__(config, data_dir)
        self.radicale = None if self.external else RadicaleProcess(self.state_dir / "radicale")
        self._lock = asyncio.Lock()  # a create decides from a listing: one change at a time
        self._reviving = asyncio.Lock()  # a probe and a change must not both restart Radicale

    def _launch(self) -> Launch:
        radicale = getattr(self, "radicale", None)
        base = radicale.url if radicale is not None and radicale.port else "http://127.0.0.1:1/"
        env = {
            "CALDAV_BASE_URL": base,
            "CALDAV_USERNAME": self.user,
            "CALDAV_PASSWORD": "local",  # Radicale runs with auth none; caldav-mcp wants one
        }
        return node_server("caldav-mcp", env=env)

    # -- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        await self._prepare()
        try:
            if self.radicale is not None:
                await self.radicale.start()
                await self._ensure_calendar()
                # The launch names Radicale's port, known only now.
                self.handle = make_handle(self.name, self.config, self._launch())
            await self.handle.start()
        except BaseException:
            await self.close()  # a half-started calendar leaves no Radicale behind
            raise

    async def close(self) -> None:
        try:
            await self.handle.close()
        finally:
            if self.radicale is not None:
                await self.radicale.stop()

    async def probe(self) -> None:
        await self._ensure_radicale()
        await super().probe()

    async def _ensure_radicale(self) -> None:
        """Bring a Radicale that died back on its port, so caldav-mcp's URL stays right."""
        if self.radicale is None or self.radicale.alive:
            return
        async with self._reviving:
            if self.radicale.alive:
                return  # brought back while this caller waited
            log.warning("radicale.exited", extra={"server": self.name})
            port = self.radicale.port
            await self.radicale.start()
            if self.radicale.port != port:  # the old port was taken: caldav-mcp must follow
                await self.handle.close()
                self.handle = make_handle(self.name, self.config, self._launch())
                await self.handle.start()
            await self._ensure_calendar()

    async def _ensure_calendar(self) -> None:
        """Create the calendar collection with MKCALENDAR unless it exists (caldav-mcp can't)."""
        assert self.radicale is not None
        url = self.radicale.url.rstrip("/") + self.calendar_url
        auth = {"Authorization": aiohttp.encode_basic_auth(self.user, "local")}
        timeout = aiohttp.ClientTimeout(total=self.config.timeout)
        async with aiohttp.ClientSession(headers=auth, timeout=timeout) as http:
            try:
                async with http.request("PROPFIND", url, headers={"Depth": "0"}) as found:
                    if found.status == 207:
                        return
                body = _MKCALENDAR_BODY.encode()
                headers = {"Content-Type": "application/xml; charset=utf-8"}
                async with http.request("MKCALENDAR", url, data=body, headers=headers) as made:
                    if made.status not in (201, 409):  # 409: made meanwhile by someone else
                        reason = f"MKCALENDAR {self.calendar_url} answered {made.status}"
                        raise ServerUnavailable(reason, server=self.name)
            except (aiohttp.ClientError, TimeoutError) as exc:
                reason = f"radicale unreachable: {type(exc).__name__}"
                raise ServerUnavailable(reason, server=self.name) from exc
        log.info("calendar.created", extra={"server": self.name, "calendar": self.calendar_url})

    # -- the task's event -------------------------------------------------------------------

    async def _apply(self, change: Change) -> str | None:
        task = snapshot(change)
        async with self._lock:
            await self._ensure_radicale()
            if task.deadline is None or task.status in (TaskStatus.DELETED, TaskStatus.FAILED):
                await self._remove(task, change.external_id)
                return None
            event_uid = change.external_id or await self._find(task)
            fields = self._fields(task)
            if event_uid is not None and await self._update(event_uid, fields):
                return event_uid
            created = await self._call_text("create-event", fields)
            log.info("calendar.event.created", extra={"task_uid": task.uid})
            return created.strip()

    async def _erase(self, change: Change, external_id: str | None) -> None:
        async with self._lock:
            await self._remove(change.task, external_id)

    def _fields(self, task: Task) -> dict[str, Any]:
        assert task.deadline is not None
        return {
            "calendarUrl": self.calendar_url,
            "summary": event_summary(task),
            "start": _utc(task.deadline),
            "end": _utc(task.deadline + EVENT_LENGTH),
            "description": event_description(task),
        }

    async def _update(self, event_uid: str, fields: dict[str, Any]) -> bool:
        """Rewrite the event; False when it is gone (deleted in the calendar, or never made)."""
        try:
            await self._call("update-event", {"uid": event_uid, **fields})
        except ToolFailed as exc:
            if _is_gone(exc):
                return False
            raise
        return True

    async def _find(self, task: Task) -> str | None:
        """The event made for this task near its deadline, if a lost reply hid its uid."""
        if task.deadline is None:
            return None
        around = task.deadline
        for event in await self.events(around - FIND_WINDOW, around + FIND_WINDOW):
            if event.task_uid == task.uid:
                return event.uid
        return None

    async def _remove(self, task: Task, external_id: str | None) -> None:
        # LIMIT: without a link and without a deadline the old event cannot be found (the
        # deadline it sat on is gone); the link is kept for that reason. A todo-style lookup
        # by uid in the server would remove the dependence on the deadline.
        event_uid = external_id or await self._find(task)
        if event_uid is None:
            return
        try:
            await self._call("delete-event", {"uid": event_uid, "calendarUrl": self.calendar_url})
        except ToolFailed as exc:
            # caldav-mcp words a missing event and a dead CalDAV server alike ("Failed to
            # retrieve ETag"); an empty update tells them apart without changing anything.
            untouched = {"calendarUrl": self.calendar_url}
            if not _is_gone(exc) or await self._update(event_uid, untouched):
                raise
        log.info("calendar.event.deleted", extra={"task_uid": task.uid})

    async def _call(self, tool: str, arguments: Mapping[str, Any] | None = None) -> object:
        """caldav-mcp reports a dead CalDAV server as a tool error; here it becomes retryable."""
        try:
            return await super()._call(tool, arguments)
        except ToolFailed as exc:
            dead = self.radicale is not None and not self.radicale.alive
            if dead or any(words in str(exc) for words in _UNREACHABLE):
                reason = f"CalDAV server unreachable ({exc.args[0]})"
                raise ServerUnavailable(reason, server=self.name, tool=tool) from exc
            raise

    # -- reading ----------------------------------------------------------------------------

    async def events(self, start: datetime, end: datetime) -> list[CalendarEvent]:
        """Events overlapping [start, end), soonest first."""
        arguments = {"start": _utc(start), "end": _utc(end), "calendarUrl": self.calendar_url}
        raw = await self._call("list-events", arguments)
        if not isinstance(raw, list):
            raise self._unexpected("list-events", "a list", raw)
        events = [parse_event(item) for item in raw if isinstance(item, dict) and "uid" in item]
        return sorted(events, key=lambda e: (e.start, e.summary))

    async def locate(self, uid: str, external_id: str | None) -> str | None:
        """`event <uid> on <start> UTC in /taskbot/tasks/`, or None."""
        now = datetime.now(UTC)
        for event in await self.events(now - LOCATE_WINDOW, now + LOCATE_WINDOW):
            if event.task_uid == uid or (external_id and event.uid == external_id):
                when = event.start.strftime("%Y-%m-%d %H:%M")
                return f"event {event.uid[:8]} on {when} UTC in {self.calendar_url}"
        return None

    @property
    def caldav_url(self) -> str | None:
        """Where a calendar app can subscribe (the local Radicale), or None when external."""
        if self.radicale is None or self.radicale.port is None:
            return None
        return self.radicale.url.rstrip("/") + self.calendar_url


def _is_gone(exc: ToolFailed) -> bool:
    return any(words in str(exc) for words in _GONE)


__all__ = ["CalendarEvent", "CalendarIntegration", "RadicaleProcess", "parse_event"]
