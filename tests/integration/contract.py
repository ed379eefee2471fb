"""The contract every integration that keeps a copy of a task honours, over its real server.

A test module maps each of its servers to how the integration is built and how its copies are
read back through the server's own tools (`Servers`), makes its `server` fixture with
`server_fixture`, and subclasses `IntegrationContract`: each test below then runs once per
server, and reads the copies back through that server's tools, never from our own records.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from core.errors import ToolFailed
from core.integration import Inspectable
from core.models import Change, Operation, TaskStatus
from integrations.mcp import McpIntegration
from tests.integration.conftest import make_task

Copy = dict[str, str]
Builder = Callable[[Path], McpIntegration]
Reader = Callable[[McpIntegration, str], Awaitable[list[Copy]]]
Servers = dict[str, tuple[Builder, Reader]]
Served = tuple[McpIntegration, Reader]


def server_fixture(servers: Servers) -> object:
    """A module's `server` fixture: each of `servers` started in turn, with its reader."""

    @pytest.fixture(name="server", params=sorted(servers))
    async def server(
        request: pytest.FixtureRequest,
        data_dir: Path,
        no_leaked_children: None,
    ) -> AsyncIterator[Served]:
        build, read = servers[request.param]
        async with build(data_dir) as integration:
            yield integration, read

    return server


class IntegrationContract:
    """Create, replay, update, complete, delete and undo, as the outbox delivers them."""

    async def test_a_created_task_is_visible_in_the_server(self, server: Served) -> None:
        integration, copies = server
        task = make_task()

        external_id = await integration.apply(Change(Operation.CREATE, task))

        assert external_id
        assert await copies(integration, task.uid) == [{"title": task.title, "status": "open"}]

    async def test_replaying_a_create_keeps_one_copy_and_the_same_id(self, server: Served) -> None:
        integration, copies = server
        task = make_task()

        first = await integration.apply(Change(Operation.CREATE, task))
        again = await integration.apply(Change(Operation.CREATE, task))

        assert again == first
        assert len(await copies(integration, task.uid)) == 1

    async def test_an_update_and_a_completion_show_in_the_server(self, server: Served) -> None:
        integration, copies = server
        task = make_task()
        external_id = await integration.apply(Change(Operation.CREATE, task))

        renamed = task.evolve(title="Write the annual report", version=2)
        await integration.apply(Change(Operation.UPDATE, renamed, external_id))
        assert await copies(integration, task.uid) == [{"title": renamed.title, "status": "open"}]

        done = renamed.evolve(status=TaskStatus.DONE, version=3)
        await integration.apply(Change(Operation.COMPLETE, done, external_id))
        await integration.apply(Change(Operation.COMPLETE, done, external_id))
        assert await copies(integration, task.uid) == [{"title": renamed.title, "status": "done"}]

    async def test_changes_without_a_known_external_id_find_the_task_by_uid(
        self, server: Served
    ) -> None:
        integration, copies = server
        task = make_task()
        await integration.apply(Change(Operation.CREATE, task))

        await integration.apply(Change(Operation.COMPLETE, task.evolve(version=2), None))

        assert await copies(integration, task.uid) == [{"title": task.title, "status": "done"}]

    async def test_a_deleted_task_is_gone_and_a_replayed_delete_is_harmless(
        self, server: Served
    ) -> None:
        integration, copies = server
        task = make_task()
        external_id = await integration.apply(Change(Operation.CREATE, task))
        gone = task.evolve(status=TaskStatus.DELETED, version=2)

        await integration.apply(Change(Operation.DELETE, gone, external_id))
        await integration.apply(Change(Operation.DELETE, gone, external_id))
        await integration.apply(Change(Operation.DELETE, gone, None))

        assert await copies(integration, task.uid) == []

    async def test_undoing_a_create_removes_its_trace(self, server: Served) -> None:
        integration, copies = server
        task = make_task()
        external_id = await integration.apply(Change(Operation.CREATE, task))
        failed = task.evolve(status=TaskStatus.FAILED, version=2)

        # As the orchestrator compensates: an UNDO change, then replays of it.
        await integration.undo(Change(Operation.UNDO, failed, external_id), external_id)
        await integration.undo(Change(Operation.UNDO, failed, external_id), external_id)
        assert await integration.apply(Change(Operation.UNDO, failed, None)) is None

        assert await copies(integration, task.uid) == []

    async def test_an_update_cannot_be_undone_and_says_so(self, server: Served) -> None:
        integration, copies = server
        task = make_task()
        external_id = await integration.apply(Change(Operation.CREATE, task))

        with pytest.raises(ToolFailed, match="cannot undo the update"):
            await integration.undo(Change(Operation.UPDATE, task, external_id), external_id)

        assert len(await copies(integration, task.uid)) == 1

    async def test_locate_names_the_copy_while_it_exists(self, server: Served) -> None:
        integration, _ = server
        assert isinstance(integration, Inspectable)
        task = make_task()
        external_id = await integration.apply(Change(Operation.CREATE, task))

        where = await integration.locate(task.uid, external_id)
        assert where and (task.uid in where or str(external_id) in where)

        await integration.apply(Change(Operation.DELETE, task.evolve(version=2), external_id))
        assert await integration.locate(task.uid, external_id) is None

    async def test_a_probe_of_a_running_server_is_quiet(self, server: Served) -> None:
        integration, _ = server
        await integration.probe()
        assert integration.handle.is_up
