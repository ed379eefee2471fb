"""Breaker, retry and timeout as a caller sees them, with an injected clock and sleep."""

from __future__ import annotations

import asyncio

import pytest

from core.errors import BreakerOpen, ServerUnavailable, ToolFailed
from core.resilience import BreakerState, CircuitBreaker, RetryPolicy, guarded_call


class _Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class _Sleeps:
    """Records the delays instead of waiting them."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def _failing(exc: Exception, log: list[int]) -> object:
    async def call() -> str:
        log.append(1)
        raise exc

    return call


async def test_network_failures_are_retried_after_1_2_and_4_seconds() -> None:
    sleeps, calls = _Sleeps(), []
    breaker = CircuitBreaker("s", threshold=100)
    with pytest.raises(ServerUnavailable):
        await guarded_call(
            _failing(ServerUnavailable("down", server="s"), calls),  # type: ignore[arg-type]
            server="s",
            tool="t",
            breaker=breaker,
            policy=RetryPolicy(attempts=3, sleep=sleeps),
            attempt_timeout=1,
        )
    assert sleeps.delays == [1, 2, 4]
    assert len(calls) == 4


async def test_a_tool_error_is_not_retried() -> None:
    sleeps, calls = _Sleeps(), []
    with pytest.raises(ToolFailed):
        await guarded_call(
            _failing(ToolFailed("bad args", server="s"), calls),  # type: ignore[arg-type]
            server="s",
            tool="t",
            breaker=CircuitBreaker("s"),
            policy=RetryPolicy(attempts=3, sleep=sleeps),
            attempt_timeout=1,
        )
    assert calls == [1]
    assert sleeps.delays == []


async def test_a_slow_call_ends_at_its_timeout_as_server_unavailable() -> None:
    async def hang() -> str:
        await asyncio.sleep(10)
        return "never"

    loop = asyncio.get_running_loop()
    began = loop.time()
    with pytest.raises(ServerUnavailable, match=r"timed out after 0\.05s"):
        await guarded_call(
            hang,
            server="s",
            tool="t",
            breaker=CircuitBreaker("s"),
            policy=RetryPolicy(attempts=0),
            attempt_timeout=0.05,
        )
    assert loop.time() - began < 2


async def test_breaker_opens_after_five_failures_and_then_rejects_without_calling() -> None:
    clock, calls = _Clock(), []
    breaker = CircuitBreaker("s", threshold=5, cooldown=30, clock=clock)
    call = _failing(ServerUnavailable("down", server="s"), calls)
    for _ in range(5):
        with pytest.raises(ServerUnavailable):
            await guarded_call(
                call,  # type: ignore[arg-type]
                server="s",
                tool="t",
                breaker=breaker,
                policy=RetryPolicy(attempts=0),
                attempt_timeout=1,
            )
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(BreakerOpen):
        await guarded_call(
            call,  # type: ignore[arg-type]
            server="s",
            tool="t",
            breaker=breaker,
            policy=RetryPolicy(attempts=3),
            attempt_timeout=1,
        )
    assert len(calls) == 5


def test_breaker_half_opens_after_cooldown_lets_one_probe_and_closes_on_success() -> None:
    clock = _Clock()
    changes: list[tuple[BreakerState, BreakerState]] = []
    breaker = CircuitBreaker(
        "s",
        threshold=2,
        cooldown=30,
        clock=clock,
        on_change=lambda _s, o, n: changes.append((o, n)),
    )
    breaker.record_failure()
    breaker.record_failure()
    clock.now += 29
    with pytest.raises(BreakerOpen):
        breaker.before_call()
    clock.now += 2
    breaker.before_call()  # the probe
    with pytest.raises(BreakerOpen, match="probing"):
        breaker.before_call()  # a second caller waits for the probe's verdict
    breaker.record_success()
    assert breaker.state is BreakerState.CLOSED
    assert changes == [
        (BreakerState.CLOSED, BreakerState.OPEN),
        (BreakerState.OPEN, BreakerState.HALF_OPEN),
        (BreakerState.HALF_OPEN, BreakerState.CLOSED),
    ]


def test_a_failed_probe_reopens_the_breaker_for_another_cooldown() -> None:
    clock = _Clock()
    breaker = CircuitBreaker("s", threshold=1, cooldown=10, clock=clock)
    breaker.record_failure()
    clock.now += 11
    breaker.before_call()
    breaker.record_failure()
    assert breaker.state is BreakerState.OPEN
    with pytest.raises(BreakerOpen):
        breaker.before_call()


def test_success_resets_the_failure_count() -> None:
    breaker = CircuitBreaker("s", threshold=3)
    breaker.record_failure()
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    breaker.record_failure()
    assert breaker.state is BreakerState.CLOSED


def test_retry_policy_states_its_delays() -> None:
    assert RetryPolicy(attempts=3).delays() == [1, 2, 4]
    assert RetryPolicy(attempts=5).delays() == [1, 2, 4, 4, 4]
