"""Admins hear about health changes in their group: once per transition, never repeated."""

from __future__ import annotations

import contextlib
import os
import signal

from integrations.memory import MemoryIntegration
from tests.e2e.conftest import ADMIN, ADMIN_GROUP, StartBot


async def test_each_health_transition_reaches_the_admin_group_once(start_bot: StartBot) -> None:
    world = await start_bot(
        ("deltatask", "memory"), overrides={"memory": {"timeout": 0.3, "retry_attempts": 0}}
    )
    # Telegram only lets a bot write where it was added; the admin says hello in the group.
    world.sb.send_text(ADMIN_GROUP, "hello", user_id=ADMIN, chat_type="supergroup")
    memory = world.orch.integrations["memory"]
    assert isinstance(memory, MemoryIntegration)
    pid = memory.handle.pid
    assert pid is not None

    os.kill(pid, signal.SIGSTOP)
    try:
        for _ in range(3):  # ONLINE -> DEGRADED -> ERROR, then no repeat while still down
            await world.orch.check_health()
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGCONT)
    down = await world.sb.wait_for_messages(ADMIN_GROUP, count=2, timeout=10)
    assert "memory" in down[0]["text"] and "ONLINE → DEGRADED" in down[0]["text"]
    assert "DEGRADED → ERROR" in down[1]["text"]

    world.orch.breakers["memory"].opened_at -= 3600  # let the breaker's cooldown pass
    for _ in range(3):  # ERROR -> DEGRADED -> ONLINE, then no repeat
        await world.orch.check_health()
    up = await world.sb.wait_for_messages(ADMIN_GROUP, count=2, timeout=10)
    assert "ERROR → DEGRADED" in up[0]["text"]
    assert "DEGRADED → ONLINE" in up[1]["text"]
    alerts = [m for m in world.sb.messages(ADMIN_GROUP) if m["from"]["is_bot"]]
    assert len(alerts) == 4
