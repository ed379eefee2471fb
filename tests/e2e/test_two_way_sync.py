"""A task changed in DeltaTask by someone else: the user sees the change in the chat."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from core.models import OutboxState
from integrations import DeltaTaskIntegration
from tests.e2e.conftest import BotWorld, Json, StartBot


async def listing_until(world: BotWorld, wanted: str, *, present: bool) -> Json:
    """Ask /list until `wanted` appears (or goes), as a user would after a moment."""
    for _ in range(40):
        (listing,) = await world.say("/list")
        if (wanted in listing["text"]) is present:
            return listing
        await asyncio.sleep(0.25)
    return listing


async def test_an_edit_and_a_finish_made_in_deltatask_show_up_in_the_chat(
    start_bot: StartBot,
) -> None:
    world = await start_bot(sync_interval=1)
    await world.say("/new Pay rent #home")
    await world.say("/new Buy milk")
    rent, milk = await world.orch.list_tasks(1)
    for task in (rent, milk):
        await world.orch.wait_synced(task.uid, within=20)
    deltatask = world.orch.integration("deltatask")
    assert isinstance(deltatask, DeltaTaskIntegration)

    rent_id = await deltatask.find_by_ref(rent.uid)
    await deltatask.handle.call(
        "update_task",
        {"task_id": rent_id, "updates": {"title": "Pay rent and water", "urgency": 5}},
        timeout=10,
    )
    await deltatask.finish_task(str(await deltatask.find_by_ref(milk.uid)))

    listing = await listing_until(world, "Buy milk", present=False)
    assert "Pay rent and water" in listing["text"]
    assert "Buy milk" not in listing["text"]
    (card,) = await world.say(f"/task {rent.id}")
    assert "Pay rent and water" in card["text"]
    assert "priority 1" in card["text"]


async def test_a_recurring_task_finished_in_deltatask_comes_back_for_next_week(
    start_bot: StartBot,
) -> None:
    world = await start_bot(sync_interval=1)
    await world.say("/new Standup every monday 9:00 #team")
    (first,) = await world.orch.list_tasks(1)
    await world.orch.wait_synced(first.uid, within=20)
    deltatask = world.orch.integration("deltatask")
    assert isinstance(deltatask, DeltaTaskIntegration)

    await deltatask.finish_task(str(await deltatask.find_by_ref(first.uid)))

    listing = await listing_until(world, "#2", present=True)
    assert "Standup" in listing["text"]
    (successor,) = await world.orch.list_tasks(1)
    assert successor.deadline == first.deadline + timedelta(days=7)  # type: ignore[operator]
    states = await world.orch.wait_synced(successor.uid, within=20)
    assert states == {"deltatask": OutboxState.DONE}  # the new one goes to deltatask too
