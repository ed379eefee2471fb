"""Group calls: items that arrive while one call runs go together in the next one.

Servers that rewrite a whole file per mutation (server-memory's JSONL, a git index, shrimp's
tasks.json) or pay a fixed price per request (a model run) cost about the same for one item as
for fifty; sending items one by one under a lock makes a burst queue behind that cost.
`GroupCall.submit` returns when the call that carried its item finished, or raises what that
call raised, so each caller keeps its own outcome. A `run` may instead hand back one outcome
per item, in order: a value for that item's caller, or the exception that caller alone
raises (one refused item does not sink the fifty beside it).

A running call lives only while someone waits for it: when every caller of the batch in
flight has given up (its timeout cancelled it), the call is cancelled too, as a direct call
would have been. Otherwise a call stuck on a hung server would hold every later batch.
`max_items` bounds one call, so a burst can never build a call too big to finish within the
callers' timeouts (which would then be cancelled and rebuilt, bigger, forever).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, overload

from typing_extensions import TypeVar

T = TypeVar("T")
R = TypeVar("R", default=None)


class GroupCall(Generic[T, R]):
    """Runs `run(batch)` for everything submitted while the previous batch was running."""

    @overload
    def __init__(
        self: GroupCall[T, None],
        run: Callable[[list[T]], Awaitable[None]],
        *,
        max_items: int | None = None,
    ) -> None: ...

    @overload
    def __init__(
        self,
        run: Callable[[list[T]], Awaitable[Sequence[R | Exception]]],
        *,
        max_items: int | None = None,
    ) -> None: ...

    def __init__(
        self,
        run: Callable[[list[T]], Awaitable[Any]],
        *,
        max_items: int | None = None,
    ) -> None:
        if max_items is not None and max_items < 1:
            raise ValueError("max_items must be at least 1")
        self._run = run
        self._max_items = max_items
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._in_flight: list[asyncio.Future[R]] = []
        self._worker: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> R:
        """The item's outcome once the call that carried it finished."""
        done: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        self._ensure_worker()
        try:
            return await done
        except asyncio.CancelledError:
            self._abandon(done)
            raise

    def _ensure_worker(self) -> None:
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())

    def _abandon(self, done: asyncio.Future[R]) -> None:
        """A caller gave up: drop its item, and stop the call nobody waits for any more."""
        done.cancel()
        self._waiting = [(i, f) for i, f in self._waiting if f is not done]
        in_flight = self._in_flight
        if in_flight and all(f.done() for f in in_flight) and self._worker is not None:
            self._worker.cancel()

    def _next_batch(self) -> list[tuple[T, asyncio.Future[R]]]:
        cut = len(self._waiting) if self._max_items is None else self._max_items
        batch, self._waiting = self._waiting[:cut], self._waiting[cut:]
        return batch

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch = self._next_batch()
                self._in_flight = [done for _, done in batch]
                try:
                    outcomes = await self._run([item for item, _ in batch])
                except Exception as exc:
                    _settle(batch, [exc] * len(batch))
                else:
                    _settle(batch, _per_item(outcomes, len(batch)))
        finally:
            self._in_flight = []
            if self._waiting:  # cancelled with newcomers queued: they get a fresh worker
                asyncio.get_running_loop().call_soon(self._ensure_worker)


def _per_item(outcomes: Sequence[Any] | None, count: int) -> Sequence[Any]:
    """One outcome per item: None for each when `run` returned nothing."""
    if outcomes is None:
        return [None] * count
    if len(outcomes) != count:
        # A bug in `run`, not in the server: nobody can tell whose outcome is whose.
        error = RuntimeError(f"batch of {count} items gave {len(outcomes)} outcomes")
        return [error] * count
    return outcomes


def _settle(batch: Sequence[tuple[object, asyncio.Future[Any]]], outcomes: Sequence[Any]) -> None:
    for (_, done), outcome in zip(batch, outcomes, strict=True):
        if done.done():
            continue  # its caller gave up
        if isinstance(outcome, Exception):
            done.set_exception(outcome)
        else:
            done.set_result(outcome)
