"""Health with hysteresis: a blip degrades, a streak errors, recovery takes two good probes."""

from __future__ import annotations

from core.health import HealthBoard
from core.models import ServerStatus

S = ServerStatus


def _board() -> tuple[HealthBoard, list[tuple[S, S]]]:
    board = HealthBoard()
    board.add("memory", priority=2, required=False, timeout=10, enabled=True)
    board.add("backup", priority=5, required=False, timeout=10, enabled=False)
    seen: list[tuple[S, S]] = []
    board.listeners.append(lambda _name, old, new, _detail: seen.append((old, new)))
    return board, seen


def test_one_failed_probe_degrades_and_the_next_good_one_restores() -> None:
    board, seen = _board()
    board.record("memory", ok=True, latency_ms=3)
    board.record("memory", ok=False, latency_ms=None, error="timeout")
    board.record("memory", ok=True, latency_ms=3)
    assert seen == [(S.STARTING, S.ONLINE), (S.ONLINE, S.DEGRADED), (S.DEGRADED, S.ONLINE)]


def test_two_failures_in_a_row_make_error_and_recovery_needs_two_good_probes() -> None:
    board, seen = _board()
    board.record("memory", ok=True, latency_ms=3)
    board.record("memory", ok=False, latency_ms=None, error="x")
    board.record("memory", ok=False, latency_ms=None, error="x")
    assert board.servers["memory"].status is S.ERROR
    board.record("memory", ok=True, latency_ms=3)
    assert board.servers["memory"].status is S.DEGRADED
    board.record("memory", ok=True, latency_ms=3)
    assert board.servers["memory"].status is S.ONLINE
    assert len(seen) == 5  # each transition told once, no repeats while unchanged


def test_an_open_breaker_is_error_and_a_slow_answer_is_degraded() -> None:
    board, _ = _board()
    board.record("memory", ok=True, latency_ms=3)
    board.record("memory", ok=True, latency_ms=6000)  # over half the 10 s timeout
    assert board.servers["memory"].status is S.DEGRADED
    board.record("memory", ok=False, latency_ms=None, error="x", breaker="open")
    assert board.servers["memory"].status is S.ERROR


def test_disabled_servers_do_not_count_towards_overall_health() -> None:
    board, _ = _board()
    board.record("memory", ok=True, latency_ms=3)
    assert board.servers["backup"].status is S.DISABLED
    assert board.overall() is S.ONLINE
