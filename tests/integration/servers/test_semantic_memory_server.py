"""The semantic_memory server as a real process, with the real MiniLM model and its fallback."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import pytest_asyncio

from .conftest import ToolClient, open_server, shared_server

pytestmark = [pytest.mark.asyncio(loop_scope="module"), pytest.mark.timeout(90)]

#: The server's MAX_BATCH (importing the server module would configure this process's logging).
MAX_BATCH = 256
TASKS = ["Rent for December", "Buy milk", "Fix the bike", "Call the dentist"]


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def memory(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[ToolClient]:
    home = tmp_path_factory.mktemp("semantic_memory")
    env = {"SEMANTIC_MEMORY_HOME": str(home)}
    async with shared_server("semantic_memory", env, home) as client:
        for title in TASKS:
            await client.call("store_memory", content=title, project_name="tasks")
        yield client


async def test_the_onnx_model_is_the_live_backend(memory: ToolClient) -> None:
    stats = await memory.call("get_stats")

    assert stats["backend"] == "minilm-l6-v2-int8-onnx"
    assert stats["fallback_reason"] is None
    assert stats["dimensions"] == 384


async def test_paying_the_flat_finds_the_rent_task_first(memory: ToolClient) -> None:
    hits = await memory.call("search_memory", query="pay the flat", minScore=0.0, topK=4)

    ranked = [hit["content"] for hit in hits]
    assert ranked[0] == "Rent for December"
    assert ranked.index("Rent for December") < ranked.index("Buy milk")
    assert ranked.index("Rent for December") < ranked.index("Fix the bike")
    assert hits[0]["score"] > hits[-1]["score"]


async def test_a_clear_paraphrase_passes_the_default_threshold(memory: ToolClient) -> None:
    hits = await memory.call("search_memory", query="bicycle repair", project_name="tasks")

    assert [hit["content"] for hit in hits] == ["Fix the bike"]


async def test_a_russian_query_returns_results_without_error(memory: ToolClient) -> None:
    hits = await memory.call("search_memory", query="оплатить квартиру", minScore=0.0)

    assert hits
    assert all(0 <= hit["score"] <= 1 for hit in hits)


async def test_keys_follow_project_date_session_sequence(memory: ToolClient) -> None:
    today = datetime.now(UTC).date().isoformat()

    first = await memory.call("store_memory", content="Likes green tea", session_name="u42")
    second = await memory.call("store_memory", content="Works nights", session_name="u42")

    assert first["key"] == f"user-memories_{today}_u42_1"
    assert second["key"] == f"user-memories_{today}_u42_2"
    fetched = await memory.call("get_memory", key=second["key"])
    assert (fetched["content"], fetched["session_name"]) == ("Works nights", "u42")


async def test_restoring_the_same_task_uid_replaces_content_under_the_same_key(
    memory: ToolClient,
) -> None:
    meta = {"task_uid": "task-7", "status": "open"}
    first = await memory.call(
        "store_memory", content="Renew passport", project_name="p7", metadata=meta
    )
    again = await memory.call(
        "store_memory",
        content="Renew passport before March",
        project_name="p7",
        metadata=meta | {"status": "done"},
    )

    assert again == first
    stored = await memory.call("get_memory", key=first["key"])
    assert stored["content"] == "Renew passport before March"
    assert stored["metadata"]["status"] == "done"
    hits = await memory.call("search_memory", query="passport", project_name="p7", minScore=0)
    assert len(hits) == 1


async def test_search_keys_gives_keys_with_scores(memory: ToolClient) -> None:
    hits = await memory.call("search_keys", query="dentist appointment", topK=1)

    assert len(hits) == 1
    assert re.fullmatch(r"tasks_\d{4}-\d{2}-\d{2}_default_\d+", hits[0]["key"])
    assert (await memory.call("get_memory", key=hits[0]["key"]))["content"] == "Call the dentist"


async def test_unknown_and_deleted_keys_give_clear_errors(memory: ToolClient) -> None:
    key = (await memory.call("store_memory", content="Temporary", project_name="tmp"))["key"]

    deleted = await memory.call("delete_memory", key=key)

    assert deleted == {"key": key, "deleted": True}
    assert "not found" in await memory.fail("get_memory", key=key)
    assert "not found" in await memory.fail("delete_memory", key=key)


async def test_store_memories_answers_each_item_in_order_and_a_refused_one_fails_alone(
    memory: ToolClient,
) -> None:
    meta = {"task_uid": "task-batch-1", "status": "open"}
    results = await memory.call(
        "store_memories",
        memories=[
            {"content": "Water the plants", "project_name": "batch", "metadata": meta},
            {"content": "   ", "project_name": "batch"},
            {"content": "Oil the hinges", "project_name": "batch", "colour": "red"},
            {"content": "Book a table", "project_name": "batch", "session_name": "u9"},
            {
                "content": "Water the plants on the balcony",
                "project_name": "batch",
                "metadata": meta | {"status": "done"},
            },
        ],
    )

    assert [sorted(r) for r in results] == [["key"], ["error"], ["error"], ["key"], ["key"]]
    assert results[1]["error"] == "content must not be empty"
    assert "colour" in results[2]["error"]
    assert results[4] == results[0]  # the same task: later item wins, same key
    stored = await memory.call("get_memory", key=results[0]["key"])
    assert (stored["content"], stored["metadata"]["status"]) == (
        "Water the plants on the balcony",
        "done",
    )
    assert (await memory.call("get_memory", key=results[3]["key"]))["session_name"] == "u9"
    hits = await memory.call("search_memory", query="book", project_name="batch", minScore=0)
    assert sorted(hit["content"] for hit in hits) == [
        "Book a table",
        "Water the plants on the balcony",
    ]


async def test_batch_stored_memories_score_exactly_as_single_stored_ones(
    memory: ToolClient,
) -> None:
    texts = [*TASKS, "Renew the car insurance before it lapses at the end of the month"]

    for text in texts:
        await memory.call("store_memory", content=text, project_name="one-by-one")
    await memory.call(
        "store_memories", memories=[{"content": t, "project_name": "together"} for t in texts]
    )

    for query in ("pay the flat", "bicycle repair", "vehicle cover"):
        single = await memory.call(
            "search_memory", query=query, project_name="one-by-one", minScore=0, topK=9
        )
        batched = await memory.call(
            "search_memory", query=query, project_name="together", minScore=0, topK=9
        )
        assert [(h["content"], h["score"]) for h in batched] == [
            (h["content"], h["score"]) for h in single
        ]


async def test_store_memories_refuses_an_oversized_call_whole(memory: ToolClient) -> None:
    too_many = [{"content": f"note {n}", "project_name": "huge"} for n in range(MAX_BATCH + 1)]

    error = await memory.fail("store_memories", memories=too_many)

    assert error == f"at most {MAX_BATCH} memories per call, got {MAX_BATCH + 1}"
    assert await memory.call("search_memory", query="note", project_name="huge") == []


async def test_keyword_fallback_works_and_the_model_embeds_its_rows_later(
    tmp_path: Path,
) -> None:
    home = {"SEMANTIC_MEMORY_HOME": str(tmp_path / "state")}
    async with open_server(
        "semantic_memory", home | {"SEMANTIC_MEMORY_BACKEND": "keyword"}, tmp_path
    ) as plain:
        assert (await plain.call("get_stats"))["backend"] == "keyword"
        for title in TASKS:
            await plain.call("store_memory", content=title)
        overlap = await plain.call("search_memory", query="fix my bike")

    async with open_server("semantic_memory", home, tmp_path) as semantic:
        meaning = await semantic.call("search_memory", query="bicycle repair")

    assert [hit["content"] for hit in overlap] == ["Fix the bike"]
    assert overlap[0]["score"] == pytest.approx(2 / 3, abs=1e-3)
    assert [hit["content"] for hit in meaning] == ["Fix the bike"]
