"""Counters and latency samples per server, and their Prometheus text rendering."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

SAMPLES_KEPT = 2048  # bounds memory per server; percentiles describe the recent window


def percentile(samples: list[float], q: float) -> float:
    """Nearest-rank percentile of `samples` (0 when empty)."""
    if not samples:
        return 0.0
    ordered = sorted(samples)
    rank = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[rank]


@dataclass
class ServerMetrics:
    successes: int = 0
    errors: dict[str, int] = field(default_factory=dict)  # error kind -> count
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=SAMPLES_KEPT))

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def total(self) -> int:
        return self.successes + self.error_count

    def summary(self) -> dict[str, object]:
        samples = list(self.latencies_ms)
        return {
            "successes": self.successes,
            "errors": self.error_count,
            "errors_by_kind": dict(self.errors),
            "error_rate": round(self.error_count / self.total, 4) if self.total else 0.0,
            "latency_ms": {
                "p50": round(percentile(samples, 50), 2),
                "p95": round(percentile(samples, 95), 2),
                "p99": round(percentile(samples, 99), 2),
            },
        }


class Metrics:
    """In-process metrics of the orchestrator; cheap enough for the hot path."""

    def __init__(self) -> None:
        self.servers: dict[str, ServerMetrics] = {}
        self.tasks_created = 0
        self.reply_ms: deque[float] = deque(maxlen=SAMPLES_KEPT)
        self.fanout_ms: deque[float] = deque(maxlen=SAMPLES_KEPT)

    def server(self, name: str) -> ServerMetrics:
        found = self.servers.get(name)
        if found is None:
            found = self.servers[name] = ServerMetrics()
        return found

    def record_call(self, server: str, duration_ms: float, error_kind: str | None) -> None:
        entry = self.server(server)
        entry.latencies_ms.append(duration_ms)
        if error_kind is None:
            entry.successes += 1
        else:
            entry.errors[error_kind] = entry.errors.get(error_kind, 0) + 1

    @property
    def total_operations(self) -> int:
        return sum(m.total for m in self.servers.values())

    def render_prometheus(
        self, *, outbox_depth: dict[str, int], status: dict[str, str], breaker: dict[str, str]
    ) -> str:
        """Prometheus text exposition format, version 0.0.4."""
        out = [
            "# HELP taskbot_tasks_created_total Tasks created through the orchestrator.",
            "# TYPE taskbot_tasks_created_total counter",
            f"taskbot_tasks_created_total {self.tasks_created}",
            "# HELP taskbot_calls_total Remote calls by server and outcome.",
            "# TYPE taskbot_calls_total counter",
        ]
        for name, m in sorted(self.servers.items()):
            out.append(f'taskbot_calls_total{{server="{name}",outcome="ok"}} {m.successes}')
            for kind, count in sorted(m.errors.items()):
                out.append(f'taskbot_calls_total{{server="{name}",outcome="{kind}"}} {count}')
        out += [
            "# HELP taskbot_call_latency_ms Recent call latency percentiles.",
            "# TYPE taskbot_call_latency_ms gauge",
        ]
        for name, m in sorted(self.servers.items()):
            samples = list(m.latencies_ms)
            for q in (50, 95, 99):
                value = round(percentile(samples, q), 3)
                out.append(f'taskbot_call_latency_ms{{server="{name}",quantile="0.{q}"}} {value}')
        out += [
            "# HELP taskbot_outbox_pending Outbox rows waiting per server.",
            "# TYPE taskbot_outbox_pending gauge",
        ]
        out += [
            f'taskbot_outbox_pending{{server="{n}"}} {c}' for n, c in sorted(outbox_depth.items())
        ]
        out += [
            "# HELP taskbot_server_up 1 when the server is ONLINE or DEGRADED.",
            "# TYPE taskbot_server_up gauge",
        ]
        for name, state in sorted(status.items()):
            up = 1 if state in ("ONLINE", "DEGRADED") else 0
            out.append(f'taskbot_server_up{{server="{name}",status="{state}"}} {up}')
        out += [
            "# HELP taskbot_breaker_open 1 while the server's circuit breaker is open.",
            "# TYPE taskbot_breaker_open gauge",
        ]
        for name, state in sorted(breaker.items()):
            is_open = int(state != "closed")
            out.append(f'taskbot_breaker_open{{server="{name}",state="{state}"}} {is_open}')
        return "\n".join(out) + "\n"
