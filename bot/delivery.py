"""One outgoing queue for everything the bot says on its own, paced to Telegram's limits.

Contract: `DeliveryQueue.send(chat_id, text)` queues a message and returns its
`DeliveryOutcome` once settled; it never raises for Telegram's reasons. One pump task starts
the sends, in order per chat and one at a time per chat, within three windows: all chats
(30 per second), each chat (1 per second) and each group (negative chat id: 20 per minute).
A send occupies its windows from its start until a window-length after it *finished*: the
server sees a request somewhere between those two moments, so however long requests take,
it can never count more than the limit inside any window of its own. Windows are stretched
by `DeliveryLimits.margin` against clock drift between the two sides.

A 429 puts the message back at the head of its chat and holds that chat and every other for
`retry_after` (the answer does not say which limit was hit). A 403 marks the chat inactive
(persisted through `ChatStates`), settles its queued messages as FORBIDDEN and refuses later
ones without a request, until the chat writes to the bot again (`ChatReactivation`). Server
and network errors retry with backoff; anything else fails at once. Each failure is logged
once: `delivery.retry_after` per 429, `delivery.forbidden` per chat, `delivery.failed` per
message given up. `close(grace)` sends what fits in `grace`, then settles the rest as
CANCELLED so their owners can keep them for the next start.

LIMIT: pacing is per process; replicas behind a load balancer each pace alone and together
may exceed the global limit (429s, honoured, are the cost). A shared limiter in Redis would
lift it.
LIMIT: a group upgraded to a supergroup (TelegramMigrateToChat) fails its messages instead
of following the new id; reminders there stop until the chat writes again. Re-keying the
chat's rows to `migrate_to_chat_id` would remove it.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Protocol

from aiogram import BaseMiddleware, Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramForbiddenError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import InlineKeyboardMarkup, TelegramObject

from core.reminders import DeliveryOutcome

log = logging.getLogger("taskbot.delivery")

BACKOFF_S = (1.0, 2.0, 4.0)  # waits before retrying a 5xx or network failure; then give up
MAX_RETRY_AFTER = 10  # 429s one message may get before it is given up
CLOSE_GRACE_S = 5.0  # how long close() keeps sending before cancelling the rest
PRUNE_EVERY_S = 60.0  # how often idle chats' pacing state is forgotten (bounds memory)


@dataclass(frozen=True, slots=True)
class DeliveryLimits:
    """Telegram's documented broadcast limits; tests raise them to flood faster."""

    global_per_second: int = 30
    per_chat_per_second: int = 1
    per_group_per_minute: int = 20
    margin: float = 1.1  # each window lasts this much longer than Telegram's


class ChatStates(Protocol):
    """Where chat reachability persists (the `chats` table)."""

    async def set_chat_active(self, chat_id: int, active: bool) -> None: ...

    async def inactive_chats(self) -> set[int]: ...


class _Window:
    """At most `limit` sends per `span` s, each counted from its start to `span` after its end."""

    def __init__(self, limit: int, span: float) -> None:
        self.limit = limit
        self.span = span
        self.in_flight = 0
        self._ended: deque[float] = deque()  # end times still inside the window, in order

    def ready_at(self, now: float) -> float | None:
        """When one more send may start; None while only a send in flight can free a slot."""
        self._expire(now)
        excess = self.in_flight + len(self._ended) - self.limit + 1
        if excess <= 0:
            return now
        if excess > len(self._ended):
            return None
        return self._ended[excess - 1] + self.span

    def start(self) -> None:
        self.in_flight += 1

    def end(self, now: float) -> None:
        self.in_flight -= 1
        self._ended.append(now)

    def idle(self, now: float) -> bool:
        self._expire(now)
        return self.in_flight == 0 and not self._ended

    def _expire(self, now: float) -> None:
        while self._ended and self._ended[0] <= now - self.span:
            self._ended.popleft()


@dataclass(eq=False, slots=True)
class _Item:
    chat_id: int
    text: str
    markup: InlineKeyboardMarkup | None
    done: asyncio.Future[DeliveryOutcome]
    failures: int = 0  # 5xx / network
    throttled: int = 0  # 429s


@dataclass(eq=False, slots=True)
class _Chat:
    chat_id: int
    windows: tuple[_Window, ...]
    queue: deque[_Item] = field(default_factory=deque)
    hold_until: float = 0.0  # a 429's retry_after
    busy: bool = False  # a send is in flight; the next one waits (keeps the chat's order)
    armed: bool = False  # has an entry in the ready heap

    def ready_at(self, now: float) -> float:
        """Earliest start of the next send; only asked while no send of this chat is in flight."""
        times = [w.ready_at(now) for w in self.windows]
        return max([self.hold_until, *(t for t in times if t is not None)])


class DeliveryQueue:
    """Paced, retried, observable sending for one bot; see the module contract."""

    def __init__(
        self,
        bot: Bot,
        *,
        limits: DeliveryLimits | None = None,
        chats: ChatStates | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self.bot = bot
        self._chat_states = chats
        self._clock = clock
        self._sleep = sleep
        self._chats: dict[int, _Chat] = {}
        self._ready: list[tuple[float, int, _Chat]] = []
        self._order = itertools.count()
        self._inactive: set[int] = set()
        self._sending: set[asyncio.Task[None]] = set()
        self._hold_until = 0.0
        self._queued = 0
        self._wake = asyncio.Event()
        self._pump: asyncio.Task[None] | None = None
        self._closing = False
        self._closed = False
        self._last_prune = 0.0
        self.set_limits(limits or DeliveryLimits())

    # -- public surface -----------------------------------------------------------------------

    def set_limits(self, limits: DeliveryLimits) -> None:
        """Apply new rates; meant for an idle queue (tests, configuration at start)."""
        self.limits = limits
        self._global = _Window(limits.global_per_second, limits.margin)
        self._global.in_flight = len(self._sending)
        for chat in self._chats.values():
            chat.windows = self._windows(chat.chat_id)

    async def track_chats(self, chats: ChatStates) -> None:
        """Persist 403s from now on and refuse chats already known to have blocked the bot."""
        self._chat_states = chats
        self._inactive |= await chats.inactive_chats()

    def is_inactive(self, chat_id: int) -> bool:
        return chat_id in self._inactive

    async def reactivate(self, chat_id: int) -> None:
        """The chat wrote to the bot again, so it may be written to again."""
        if chat_id not in self._inactive:
            return
        self._inactive.discard(chat_id)
        if self._chat_states is not None:
            await self._chat_states.set_chat_active(chat_id, True)
        log.info("delivery.reactivated", extra={"chat_id": chat_id})

    @property
    def depth(self) -> int:
        """Messages queued and not yet started."""
        return self._queued

    async def send(
        self, chat_id: int, text: str, *, reply_markup: InlineKeyboardMarkup | None = None
    ) -> DeliveryOutcome:
        """Queue one message and wait for its outcome."""
        return await self.submit(chat_id, text, reply_markup=reply_markup)

    def submit(
        self, chat_id: int, text: str, *, reply_markup: InlineKeyboardMarkup | None = None
    ) -> asyncio.Future[DeliveryOutcome]:
        """Queue one message; the future settles with its outcome."""
        done: asyncio.Future[DeliveryOutcome] = asyncio.get_running_loop().create_future()
        if self._closing:
            done.set_result(DeliveryOutcome.CANCELLED)
            return done
        if chat_id in self._inactive:
            log.debug("delivery.skipped_inactive", extra={"chat_id": chat_id})
            done.set_result(DeliveryOutcome.FORBIDDEN)
            return done
        chat = self._chats.get(chat_id)
        if chat is None:
            chat = self._chats[chat_id] = _Chat(chat_id, self._windows(chat_id))
        chat.queue.append(_Item(chat_id, text, reply_markup, done))
        self._queued += 1
        self._arm(chat)
        if self._pump is None:
            self._pump = asyncio.create_task(self._run(), name="delivery.pump")
        return done

    async def close(self, grace: float = CLOSE_GRACE_S) -> None:
        """Send what fits in `grace`, cancel the rest, and wait for requests in flight."""
        if self._closed:
            return
        self._closing = True
        try:
            async with asyncio.timeout(grace):
                while self._queued or self._sending:
                    if self._queued:
                        await self._changed()
                    else:  # a send in flight may still come back for a retry
                        await asyncio.wait(set(self._sending))
        except TimeoutError:
            log.warning("delivery.close_timeout", extra={"queued": self._queued})
        for chat in self._chats.values():
            while chat.queue:
                self._settle(chat.queue.popleft(), DeliveryOutcome.CANCELLED)
        self._queued = 0
        self._ready.clear()
        self._closed = True
        self._wake.set()
        if self._pump is not None:
            await self._pump
        if self._sending:
            await asyncio.gather(*set(self._sending), return_exceptions=True)

    # -- pacing -------------------------------------------------------------------------------

    def _windows(self, chat_id: int) -> tuple[_Window, ...]:
        limits = self.limits
        per_chat = _Window(limits.per_chat_per_second, limits.margin)
        if chat_id > 0:
            return (per_chat,)
        return per_chat, _Window(limits.per_group_per_minute, 60.0 * limits.margin)

    def _arm(self, chat: _Chat) -> None:
        """Put a chat with work and no send in flight into the ready heap (once)."""
        if chat.queue and not chat.busy and not chat.armed:
            chat.armed = True
            at = chat.ready_at(self._clock())
            heapq.heappush(self._ready, (at, next(self._order), chat))
            self._wake.set()

    async def _run(self) -> None:
        while not self._closed:
            now = self._clock()
            gate = self._global.ready_at(now)
            if not self._ready or gate is None:
                await self._changed()  # new work, a finished send, or close
                continue
            at, _, chat = self._ready[0]
            start = max(at, gate, self._hold_until)
            if start > now:
                await self._doze(start - now)
                continue
            heapq.heappop(self._ready)
            chat.armed = False
            self._start(chat, chat.queue.popleft())
            self._prune(now)

    def _start(self, chat: _Chat, item: _Item) -> None:
        self._queued -= 1
        chat.busy = True
        for window in (self._global, *chat.windows):
            window.start()
        task = asyncio.create_task(self._send(chat, item))
        self._sending.add(task)
        task.add_done_callback(self._sending.discard)

    async def _changed(self) -> None:
        self._wake.clear()
        await self._wake.wait()

    async def _doze(self, seconds: float) -> None:
        """Sleep until a send is due, or less if new work or close comes first."""
        self._wake.clear()
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        waker = asyncio.ensure_future(self._wake.wait())
        await asyncio.wait({sleeper, waker}, return_when=asyncio.FIRST_COMPLETED)
        for pending in (sleeper, waker):
            pending.cancel()

    def _prune(self, now: float) -> None:
        """Forget idle chats whose windows have emptied."""
        if now - self._last_prune < PRUNE_EVERY_S:
            return
        self._last_prune = now
        stale = [
            chat_id
            for chat_id, chat in self._chats.items()
            if not (chat.queue or chat.busy)
            and chat.hold_until <= now
            and all(w.idle(now) for w in chat.windows)
        ]
        for chat_id in stale:
            del self._chats[chat_id]

    # -- one request --------------------------------------------------------------------------

    async def _send(self, chat: _Chat, item: _Item) -> None:
        outcome: DeliveryOutcome | None = None
        try:
            await self.bot.send_message(item.chat_id, item.text, reply_markup=item.markup)
            outcome = DeliveryOutcome.SENT
        except TelegramRetryAfter as exc:
            outcome = self._throttled(chat, item, exc.retry_after)
        except TelegramForbiddenError:
            outcome = DeliveryOutcome.FORBIDDEN
            await self._forbid(chat)
        except (TelegramServerError, TelegramNetworkError) as exc:
            outcome = self._failed_transiently(chat, item, exc)
        except TelegramAPIError as exc:
            outcome = DeliveryOutcome.FAILED
            self._give_up(item, exc)
        except Exception:
            outcome = DeliveryOutcome.FAILED
            log.exception("delivery.crashed", extra={"chat_id": item.chat_id})
        finally:
            now = self._clock()
            for window in (self._global, *chat.windows):
                window.end(now)
            chat.busy = False
            if outcome is not None:
                self._settle(item, outcome)
            self._arm(chat)
            self._wake.set()

    def _throttled(self, chat: _Chat, item: _Item, retry_after: float) -> DeliveryOutcome | None:
        item.throttled += 1
        log.warning(
            "delivery.retry_after",
            extra={"chat_id": item.chat_id, "retry_after": retry_after, "attempt": item.throttled},
        )
        if item.throttled > MAX_RETRY_AFTER:
            self._give_up(item, None)
            return DeliveryOutcome.FAILED
        until = self._clock() + retry_after
        chat.hold_until = max(chat.hold_until, until)
        self._hold_until = max(self._hold_until, until)
        self._requeue(chat, item)
        return None

    def _failed_transiently(
        self, chat: _Chat, item: _Item, exc: TelegramAPIError
    ) -> DeliveryOutcome | None:
        if item.failures >= len(BACKOFF_S):
            self._give_up(item, exc)
            return DeliveryOutcome.FAILED
        wait = BACKOFF_S[item.failures]
        item.failures += 1
        log.debug("delivery.retry", extra={"chat_id": item.chat_id, "wait_s": wait})
        chat.hold_until = max(chat.hold_until, self._clock() + wait)
        self._requeue(chat, item)
        return None

    def _requeue(self, chat: _Chat, item: _Item) -> None:
        if self._closed:
            self._settle(item, DeliveryOutcome.CANCELLED)
            return
        chat.queue.appendleft(item)
        self._queued += 1

    def _give_up(self, item: _Item, exc: TelegramAPIError | None) -> None:
        log.warning(
            "delivery.failed",
            extra={
                "chat_id": item.chat_id,
                "error": type(exc).__name__ if exc else "TooManyRetries",
                "attempts": item.failures + item.throttled + 1,
            },
        )

    async def _forbid(self, chat: _Chat) -> None:
        """The chat blocked the bot: stop writing there and settle what waits for it."""
        first = chat.chat_id not in self._inactive
        self._inactive.add(chat.chat_id)
        while chat.queue:
            self._queued -= 1
            self._settle(chat.queue.popleft(), DeliveryOutcome.FORBIDDEN)
        if not first:
            return
        log.warning("delivery.forbidden", extra={"chat_id": chat.chat_id})
        if self._chat_states is not None:
            try:
                await self._chat_states.set_chat_active(chat.chat_id, False)
            except Exception:
                log.exception("delivery.chat_state_failed", extra={"chat_id": chat.chat_id})

    @staticmethod
    def _settle(item: _Item, outcome: DeliveryOutcome) -> None:
        if not item.done.done():
            item.done.set_result(outcome)


class ChatReactivation(BaseMiddleware):
    """Outer update middleware: a chat that writes to the bot may be written to again."""

    def __init__(self, delivery: DeliveryQueue) -> None:
        self.delivery = delivery

    async def __call__(
        self,
        handler: Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]],
        event: TelegramObject,
        data: dict[str, Any],
    ) -> Any:
        chat = data.get("event_chat")
        if chat is not None and self.delivery.is_inactive(chat.id):
            await self.delivery.reactivate(chat.id)
        return await handler(event, data)
