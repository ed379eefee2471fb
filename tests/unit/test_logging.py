"""JSON log lines: stable event names, data in fields, secrets never written."""

from __future__ import annotations

import json
import logging
import logging.handlers
from collections.abc import Iterator
from pathlib import Path

import pytest

from core.logging import setup_logging

TOKEN = "123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw"


@pytest.fixture
def log_file(tmp_path: Path) -> Iterator[Path]:
    setup_logging(tmp_path, console=False)
    yield tmp_path / "orchestrator.log"
    setup_logging(None, console=False)


def _lines(path: Path) -> list[dict[str, object]]:
    for handler in logging.getLogger().handlers:
        handler.flush()
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_an_event_is_one_json_line_with_its_fields(log_file: Path) -> None:
    logging.getLogger("taskbot.test").info("task.created", extra={"task_uid": "u1", "chat_id": 5})
    (line,) = _lines(log_file)
    assert line["event"] == "task.created"
    assert line["task_uid"] == "u1"
    assert line["chat_id"] == 5
    assert line["level"] == "INFO"


def test_a_token_never_reaches_the_file_in_any_position(log_file: Path) -> None:
    log = logging.getLogger("aiogram.test")
    log.warning("request to https://api.example/bot%s/getMe failed", TOKEN)
    log.info("call.failed", extra={"detail": f"bad token {TOKEN}", "api_key": "k-123"})
    try:
        raise RuntimeError(f"boom {TOKEN}")
    except RuntimeError:
        log.exception("update.failed")
    text = log_file.read_text(encoding="utf-8")
    assert TOKEN not in text
    assert "k-123" not in text
    assert text.count("[REDACTED]") >= 4


def test_the_log_file_rotates_at_ten_megabytes_keeping_five(log_file: Path) -> None:
    (handler,) = [
        h
        for h in logging.getLogger().handlers
        if isinstance(h, logging.handlers.RotatingFileHandler)
    ]
    assert Path(handler.baseFilename) == log_file
    assert (handler.maxBytes, handler.backupCount) == (10 * 1024 * 1024, 5)
