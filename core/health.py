"""Per-server health with hysteresis: one blip does not flap ONLINE -> ERROR -> ONLINE.

Rules, applied after every probe (and after start-up):
- a failed probe moves ONLINE to DEGRADED; `FAILS_TO_ERROR` failures in a row make ERROR;
- an open breaker is ERROR at once; a half-open one is DEGRADED;
- a good probe is DEGRADED while slow (over `SLOW_FRACTION` of the timeout) or while
  leaving ERROR (it takes `OKS_TO_ONLINE` good probes in a row), otherwise ONLINE.
Each transition calls the listener exactly once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from core.models import ServerStatus, utcnow

log = logging.getLogger("taskbot.health")

FAILS_TO_ERROR = 2
OKS_TO_ONLINE = 2
SLOW_FRACTION = 0.5

Listener = Callable[[str, ServerStatus, ServerStatus, str | None], None]


@dataclass
class ServerHealth:
    name: str
    priority: int
    required: bool
    timeout: float
    status: ServerStatus = ServerStatus.STARTING
    latency_ms: float | None = None
    last_error: str | None = None
    last_check: datetime | None = None
    fails: int = 0
    oks: int = 0
    breaker: str = "closed"

    def as_dict(self) -> dict[str, object]:
        return {
            "status": self.status.value,
            "latency_ms": None if self.latency_ms is None else round(self.latency_ms, 2),
            "last_error": self.last_error,
            "last_check": self.last_check.isoformat() if self.last_check else None,
            "breaker": self.breaker,
            "priority": self.priority,
            "required": self.required,
        }


class HealthBoard:
    """The current status of every configured server, and who to tell when it changes."""

    def __init__(self) -> None:
        self.servers: dict[str, ServerHealth] = {}
        self.listeners: list[Listener] = []

    def add(
        self, name: str, *, priority: int, required: bool, timeout: float, enabled: bool
    ) -> None:
        entry = ServerHealth(name, priority, required, timeout)
        if not enabled:
            entry.status = ServerStatus.DISABLED
        self.servers[name] = entry

    def record(
        self,
        name: str,
        *,
        ok: bool,
        latency_ms: float | None,
        error: str | None = None,
        breaker: str = "closed",
    ) -> ServerStatus:
        entry = self.servers[name]
        entry.last_check = utcnow()
        entry.breaker = breaker
        if ok:
            entry.latency_ms = latency_ms
            entry.oks, entry.fails = entry.oks + 1, 0
        else:
            entry.last_error = error
            entry.fails, entry.oks = entry.fails + 1, 0
        self._transition(entry, self._judge(entry, ok, latency_ms), error)
        return entry.status

    def _judge(self, entry: ServerHealth, ok: bool, latency_ms: float | None) -> ServerStatus:
        if entry.breaker == "open":
            return ServerStatus.ERROR
        if not ok:
            if entry.status is ServerStatus.STARTING or entry.fails >= FAILS_TO_ERROR:
                return ServerStatus.ERROR
            return ServerStatus.DEGRADED if entry.status is ServerStatus.ONLINE else entry.status
        slow = latency_ms is not None and latency_ms > SLOW_FRACTION * entry.timeout * 1000
        if entry.breaker == "half_open" or slow:
            return ServerStatus.DEGRADED
        if entry.status is ServerStatus.ERROR and entry.oks < OKS_TO_ONLINE:
            return ServerStatus.DEGRADED
        return ServerStatus.ONLINE

    def _transition(self, entry: ServerHealth, new: ServerStatus, detail: str | None) -> None:
        old = entry.status
        if new is old:
            return
        entry.status = new
        log.warning(
            "health.changed",
            extra={"server": entry.name, "old": old.value, "new": new.value},
        )
        for listener in self.listeners:
            listener(entry.name, old, new, detail)

    def overall(self) -> ServerStatus:
        live = [s for s in self.servers.values() if s.status is not ServerStatus.DISABLED]
        if any(s.required and s.status is ServerStatus.ERROR for s in live):
            return ServerStatus.ERROR
        if any(s.status is not ServerStatus.ONLINE for s in live):
            return ServerStatus.DEGRADED
        return ServerStatus.ONLINE
