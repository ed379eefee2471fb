"""GroupCall: bursts share one call, each caller keeps its outcome, abandoned calls stop."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from integrations.mcp.batching import GroupCall


async def test_items_arriving_during_a_call_share_the_next_call() -> None:
    batches: list[list[int]] = []
    gate = asyncio.Event()

    async def run(batch: list[int]) -> None:
        batches.append(batch)
        await gate.wait()

    group: GroupCall[int] = GroupCall(run)
    first = asyncio.create_task(group.submit(0))
    await asyncio.sleep(0)
    rest = [asyncio.create_task(group.submit(i)) for i in range(1, 6)]
    await asyncio.sleep(0)
    gate.set()
    await asyncio.gather(first, *rest)
    assert batches == [[0], [1, 2, 3, 4, 5]]


async def test_a_failed_call_raises_in_every_caller_of_that_batch() -> None:
    async def run(batch: list[int]) -> None:
        raise RuntimeError(f"server refused {len(batch)}")

    group: GroupCall[int] = GroupCall(run)
    results = await asyncio.gather(group.submit(1), group.submit(2), return_exceptions=True)
    assert [str(r) for r in results] == ["server refused 2", "server refused 2"]


async def test_a_call_nobody_waits_for_is_cancelled_and_later_items_still_go_through() -> None:
    seen: list[list[str]] = []
    cancelled = asyncio.Event()

    async def run(batch: list[str]) -> None:
        seen.append(batch)
        if batch == ["hangs"]:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancelled.set()
                raise

    group: GroupCall[str] = GroupCall(run)
    with pytest.raises(TimeoutError):
        async with asyncio.timeout(0.05):
            await group.submit("hangs")
    await asyncio.wait_for(cancelled.wait(), 1)
    await asyncio.wait_for(group.submit("after"), 1)
    assert seen == [["hangs"], ["after"]]


async def test_each_caller_gets_its_own_outcome_and_a_refused_item_fails_alone() -> None:
    async def run(batch: list[str]) -> list[str | Exception]:
        return [ValueError(f"{item} refused") if item == "bad" else item.upper() for item in batch]

    group: GroupCall[str, str] = GroupCall(run)
    results = await asyncio.gather(
        group.submit("a"), group.submit("bad"), group.submit("c"), return_exceptions=True
    )

    assert results[0] == "A"
    assert isinstance(results[1], ValueError) and str(results[1]) == "bad refused"
    assert results[2] == "C"


async def test_a_run_that_miscounts_its_outcomes_fails_every_caller_of_the_batch() -> None:
    async def run(batch: list[int]) -> Sequence[int | Exception]:
        return batch[:-1]

    group: GroupCall[int, int] = GroupCall(run)
    results = await asyncio.gather(group.submit(1), group.submit(2), return_exceptions=True)

    assert [str(r) for r in results] == ["batch of 2 items gave 1 outcomes"] * 2


async def test_max_items_splits_a_burst_into_calls_of_bounded_size_in_arrival_order() -> None:
    batches: list[list[int]] = []

    async def run(batch: list[int]) -> None:
        batches.append(batch)
        await asyncio.sleep(0)

    group: GroupCall[int] = GroupCall(run, max_items=2)
    await asyncio.gather(*(group.submit(i) for i in range(5)))

    assert batches == [[0, 1], [2, 3], [4]]
