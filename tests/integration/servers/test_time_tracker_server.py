"""The time_tracker server as a real process: timers, manual entries and reports."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio

from .conftest import ToolClient, shared_server

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(60)]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def tracker(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ToolClient]:
    home = tmp_path_factory.mktemp("time_tracker")
    async with shared_server("time_tracker", {"TIME_TRACKER_HOME": str(home)}, home) as client:
        yield client


async def test_a_started_timer_is_active_until_stopped_and_then_has_a_duration(
    tracker: ToolClient,
) -> None:
    started = await tracker.call("start_timer", task_id="t-1", user="anna", note="writing")

    active = await tracker.call("get_active_timer", user="anna")
    await asyncio.sleep(1.1)
    stopped = await tracker.call("stop_timer", user="anna")

    assert active["active"] is True
    assert active["entry"]["id"] == started["id"]
    assert stopped["id"] == started["id"]
    assert stopped["running"] is False
    assert stopped["duration_seconds"] >= 1
    assert (await tracker.call("get_active_timer", user="anna"))["active"] is False


async def test_a_second_timer_for_the_same_user_is_refused(tracker: ToolClient) -> None:
    first = await tracker.call("start_timer", task_id="t-1", user="boris")

    error = await tracker.fail("start_timer", task_id="t-2", user="boris")

    assert "already has a running timer" in error
    assert first["id"] in error
    await tracker.call("stop_timer", user="boris", entry_id=first["id"])


async def test_replaying_a_keyed_start_returns_the_same_entry(tracker: ToolClient) -> None:
    first = await tracker.call("start_timer", task_id="t-3", user="vera", idempotency_key="s-1")
    replay = await tracker.call("start_timer", task_id="t-3", user="vera", idempotency_key="s-1")

    assert replay == first
    assert len(await tracker.call("list_entries", user="vera")) == 1
    await tracker.call("stop_timer", user="vera")


async def test_stopping_without_a_running_timer_or_with_the_wrong_entry_is_an_error(
    tracker: ToolClient,
) -> None:
    assert "no running timer" in await tracker.fail("stop_timer", user="nobody")
    await tracker.call("start_timer", task_id="t-4", user="gleb")

    assert "not 'gleb'" in await tracker.fail("stop_timer", user="gleb", entry_id="other")
    await tracker.call("stop_timer", user="gleb")


async def test_logged_time_is_listed_and_nonsense_minutes_are_refused(
    tracker: ToolClient,
) -> None:
    entry = await tracker.call(
        "log_time", task_id="t-5", user="dana", minutes=45, note="call", date="2026-03-02T10:00"
    )

    listed = await tracker.call("list_entries", task_id="t-5")
    assert [e["id"] for e in listed] == [entry["id"]]
    assert (entry["minutes"], entry["source"], entry["stopped"]) == (
        45,
        "manual",
        "2026-03-02T10:45:00+00:00",
    )
    assert "minutes" in await tracker.fail("log_time", task_id="t-5", user="dana", minutes=0)
    assert "minutes" in await tracker.fail("log_time", task_id="t-5", user="dana", minutes=5000)


async def test_report_sums_minutes_by_task_day_and_tag(tracker: ToolClient) -> None:
    for task, minutes, day, tags in (
        ("rent", 30, "2026-01-10T09:00", ["home", "money"]),
        ("rent", 15, "2026-01-11T09:00", ["money"]),
        ("bike", 60, "2026-01-11T18:00", []),
    ):
        await tracker.call(
            "log_time", task_id=task, user="egor", minutes=minutes, date=day, tags=tags
        )

    by_task = await tracker.call("get_report", user="egor", group_by="task")
    by_day = await tracker.call("get_report", user="egor", group_by="day")
    by_tag = await tracker.call("get_report", user="egor", group_by="tag")

    assert by_task["total_minutes"] == 105
    assert [(g["key"], g["minutes"]) for g in by_task["groups"]] == [("bike", 60), ("rent", 45)]
    assert [(g["key"], g["minutes"]) for g in by_day["groups"]] == [
        ("2026-01-10", 30),
        ("2026-01-11", 75),
    ]
    assert {g["key"]: g["minutes"] for g in by_tag["groups"]} == {
        "(untagged)": 60,
        "money": 45,
        "home": 30,
    }


async def test_report_window_includes_the_whole_until_day(tracker: ToolClient) -> None:
    await tracker.call("log_time", task_id="a", user="zoya", minutes=10, date="2026-02-01T08:00")
    await tracker.call("log_time", task_id="b", user="zoya", minutes=20, date="2026-02-02T23:00")
    await tracker.call("log_time", task_id="c", user="zoya", minutes=40, date="2026-02-03T00:30")

    report = await tracker.call(
        "get_report", user="zoya", since="2026-02-02", until="2026-02-02", group_by="task"
    )

    assert report["total_minutes"] == 20
    assert [g["key"] for g in report["groups"]] == ["b"]
