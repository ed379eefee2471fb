"""Group calls: items that arrive while one call runs go together in the next one.

Servers that rewrite a whole file per mutation (server-memory's JSONL, a git index) cost
the same for one item as for fifty; sending items one by one under a lock makes a burst
queue behind that cost. `GroupCall.submit` returns when the call that carried its item
finished, or raises what that call raised, so each caller keeps its own outcome.

A running call lives only while someone waits for it: when every caller of the batch in
flight has given up (its timeout cancelled it), the call is cancelled too, as a direct call
would have been. Otherwise a call stuck on a hung server would hold every later batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class GroupCall(Generic[T]):
    """Runs `run(batch)` for everything submitted while the previous batch was running."""

    def __init__(self, run: Callable[[list[T]], Awaitable[None]]) -> None:
        self._run = run
        self._waiting: list[tuple[T, asyncio.Future[None]]] = []
        self._in_flight: list[asyncio.Future[None]] = []
        self._worker: asyncio.Task[None] | None = None

    async def submit(self, item: T) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        self._ensure_worker()
        try:
            await done
        except asyncio.CancelledError:
            self._abandon(done)
            raise

    def _ensure_worker(self) -> None:
        if self._worker is None or self._worker.done():
            self._worker = asyncio.create_task(self._drain())

    def _abandon(self, done: asyncio.Future[None]) -> None:
        """A caller gave up: drop its item, and stop the call nobody waits for any more."""
        done.cancel()
        self._waiting = [(i, f) for i, f in self._waiting if f is not done]
        in_flight = self._in_flight
        if in_flight and all(f.done() for f in in_flight) and self._worker is not None:
            self._worker.cancel()

    async def _drain(self) -> None:
        try:
            while self._waiting:
                batch, self._waiting = self._waiting, []
                self._in_flight = [done for _, done in batch]
                try:
                    await self._run([item for item, _ in batch])
                except Exception as exc:
                    for _, done in batch:
                        if not done.done():
                            done.set_exception(exc)
                else:
                    for _, done in batch:
                        if not done.done():
                            done.set_result(None)
        finally:
            self._in_flight = []
            if self._waiting:  # cancelled with newcomers queued: they get a fresh worker
                asyncio.get_running_loop().call_soon(self._ensure_worker)
