"""`taskbot run` as an operator starts and stops it: clear refusals, clean SIGTERM."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import psutil

from bot.sandbox import TelegramSandbox
from core.settings import SERVER_NAMES, load_config

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "5151:cli-sandbox-token-abcdef"


def _config(tmp_path: Path) -> Path:
    config = load_config().with_servers(**{n: {"enabled": n == "deltatask"} for n in SERVER_NAMES})
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config.model_dump(mode="json", exclude_defaults=False)))
    return path


async def _taskbot(tmp_path: Path, token: str, base: str) -> asyncio.subprocess.Process:
    env = {
        **os.environ,
        "BOT_TOKEN": token,
        "TELEGRAM_API_BASE": base,
        "TASKBOT_DATA_DIR": str(tmp_path / "data"),
        "TASKBOT_CONFIG": str(_config(tmp_path)),
    }
    return await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot.cli",
        "run",
        "--metrics-port",
        "0",
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )


async def test_a_token_the_bot_api_refuses_is_a_clear_error_without_the_token(
    tmp_path: Path,
) -> None:
    wrong = "999:WrongTokenValueXYZ"
    async with TelegramSandbox(token=TOKEN) as sb:
        proc = await _taskbot(tmp_path, wrong, sb.base_url)
        _out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    assert "refused BOT_TOKEN" in err.decode()
    assert "WrongTokenValueXYZ" not in err.decode()
    assert "Traceback" not in err.decode()


async def test_an_unreachable_bot_api_is_a_clear_error(tmp_path: Path) -> None:
    proc = await _taskbot(tmp_path, TOKEN, "http://127.0.0.1:9")
    _out, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 2
    assert "cannot reach the Bot API" in err.decode()
    assert "Traceback" not in err.decode()


async def test_sigterm_stops_polling_closes_servers_and_exits_zero(tmp_path: Path) -> None:
    async with TelegramSandbox(token=TOKEN) as sb:
        proc = await _taskbot(tmp_path, TOKEN, sb.base_url)
        sb.send_text(7, "/new Survive a restart", user_id=7)
        (reply,) = await sb.wait_for_messages(7, count=1, timeout=90)
        assert "Saved task #1" in reply["text"]
        children = psutil.Process(proc.pid).children(recursive=True)
        assert children, "the MCP servers run as children of the bot"
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 0
    _gone, alive = psutil.wait_procs(children, timeout=10)
    assert not alive, f"left running: {[p.pid for p in alive]}"
    log = (tmp_path / "data" / "logs" / "orchestrator.log").read_text(encoding="utf-8")
    assert "taskbot.stopped" in log
    assert TOKEN.split(":")[1] not in log
