"""Circuit breaker, retry and timeout: the three wrappers around every remote call.

`guarded_call` composes them in a fixed order: the breaker decides whether to try at all,
each attempt runs under the server's timeout, and only `ServerUnavailable` (the network
kind: the server may never have seen the call) is retried, after 1 s, 2 s, 4 s. Because
every call carries the task uid as its idempotency key, a retry after a lost reply
cannot make a duplicate.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TypeVar

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    wait_exponential,
)

from core.errors import BreakerOpen, ServerUnavailable

log = logging.getLogger("taskbot.resilience")
T = TypeVar("T")
Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class CircuitBreaker:
    """Stops calling a server after `threshold` failures in a row; one probe after `cooldown`."""

    server: str
    threshold: int = 5
    cooldown: float = 30.0
    clock: Clock = time.monotonic
    on_change: Callable[[str, BreakerState, BreakerState], None] | None = None
    state: BreakerState = BreakerState.CLOSED
    failures: int = 0
    opened_at: float = 0.0
    _probing: bool = field(default=False, repr=False)

    def before_call(self) -> None:
        """Raise BreakerOpen unless a call may go through now."""
        if self.state is BreakerState.CLOSED:
            return
        if self.state is BreakerState.OPEN:
            if self.clock() - self.opened_at < self.cooldown:
                raise BreakerOpen("circuit breaker is open", server=self.server)
            self._set(BreakerState.HALF_OPEN)
        # Half-open lets exactly one probe through; the rest are refused until it ends.
        if self._probing:
            raise BreakerOpen("circuit breaker is half-open, probing", server=self.server)
        self._probing = True

    def record_success(self) -> None:
        self._probing = False
        self.failures = 0
        if self.state is not BreakerState.CLOSED:
            self._set(BreakerState.CLOSED)

    def record_failure(self) -> None:
        self._probing = False
        self.failures += 1
        if self.state is BreakerState.HALF_OPEN or self.failures >= self.threshold:
            self.opened_at = self.clock()
            if self.state is not BreakerState.OPEN:
                self._set(BreakerState.OPEN)

    def release(self) -> None:
        """End a probe that neither succeeded nor failed on the server's account."""
        self._probing = False

    def _set(self, new: BreakerState) -> None:
        old, self.state = self.state, new
        event = {"open": "breaker.opened", "closed": "breaker.closed"}.get(new, "breaker.half_open")
        log.warning(event, extra={"server": self.server, "failures": self.failures})
        if self.on_change is not None:
            self.on_change(self.server, old, new)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff 1 s, 2 s, 4 s ... for network-kind failures only."""

    attempts: int = 3  # retries after the first try; the config's `retry_attempts`
    first_delay: float = 1.0
    max_delay: float = 4.0
    sleep: Sleep = asyncio.sleep

    def delays(self) -> list[float]:
        """The waits this policy would make, in order (documentation and tests)."""
        return [min(self.first_delay * 2**i, self.max_delay) for i in range(self.attempts)]


def _log_retry(server: str, tool: str) -> Callable[[RetryCallState], None]:
    def before_sleep(state: RetryCallState) -> None:
        delay = state.next_action.sleep if state.next_action else 0.0
        log.info(
            "retry.sleep",
            extra={
                "server": server,
                "tool": tool,
                "attempt": state.attempt_number,
                "delay_s": delay,
            },
        )

    return before_sleep


async def guarded_call(
    call: Callable[[], Awaitable[T]],
    *,
    server: str,
    tool: str,
    breaker: CircuitBreaker,
    policy: RetryPolicy,
    attempt_timeout: float,
) -> T:
    """Run `call` under breaker, per-attempt timeout and retry; IntegrationError on failure."""

    async def attempt() -> T:
        breaker.before_call()
        try:
            async with asyncio.timeout(attempt_timeout):
                result = await call()
        except TimeoutError as exc:
            breaker.record_failure()
            raise ServerUnavailable(
                f"timed out after {attempt_timeout:g}s", server=server, tool=tool
            ) from exc
        except ServerUnavailable:
            breaker.record_failure()
            raise
        except BaseException:
            breaker.release()
            raise
        breaker.record_success()
        return result

    retrying = AsyncRetrying(
        stop=stop_after_attempt(policy.attempts + 1),
        wait=wait_exponential(
            multiplier=policy.first_delay, min=policy.first_delay, max=policy.max_delay
        ),
        retry=retry_if_exception_type(ServerUnavailable),
        sleep=policy.sleep,
        before_sleep=_log_retry(server, tool),
        reraise=True,
    )
    return await retrying(attempt)
