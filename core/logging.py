"""JSON-lines logging with rotation, and redaction of anything shaped like a secret.

Event names are the log message (`task.created`, `breaker.opened`); data rides in
`extra` fields. The formatter drops the standard LogRecord noise, keeps the extras, and
scrubs Telegram bot tokens and values under secret-looking keys before anything is
written, so a token pasted into an error message still never reaches a file.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

LOG_FILE_BYTES = 10 * 1024 * 1024  # rotate at 10 MB ...
LOG_FILE_COUNT = 5  # ... keeping five old files: at most ~60 MB of logs on disk

_TOKEN = re.compile(r"\b\d{5,}:[A-Za-z0-9_-]{20,}\b")
_URL_TOKEN = re.compile(r"/bot\d{5,}:[A-Za-z0-9_-]+")
_SECRET_KEYS = re.compile(r"token|secret|password|api_?key|authorization", re.IGNORECASE)
_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", (), None).__dict__.keys() | {"message", "asctime"}
)
REDACTED = "[REDACTED]"


def redact(text: str) -> str:
    """Mask bot tokens, also inside Bot API URLs."""
    return _TOKEN.sub(REDACTED, _URL_TOKEN.sub("/bot" + REDACTED, text))


def _clean(key: str, value: object) -> object:
    if _SECRET_KEYS.search(key):
        return REDACTED
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    return redact(str(value))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: ts, level, logger, event, then the extra fields."""

    def format(self, record: logging.LogRecord) -> str:
        out: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "event": redact(record.getMessage()),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                out[key] = _clean(key, value)
        if record.exc_info:
            out["exc"] = redact(self.formatException(record.exc_info))
        return json.dumps(out, ensure_ascii=False)


class _RedactingFilter(logging.Filter):
    """Scrub third-party records (aiogram, aiohttp) whose args may carry the token."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.args:
            record.msg = redact(record.getMessage())
            record.args = None
        return True


def setup_logging(
    log_dir: Path | None,
    *,
    level: int = logging.INFO,
    console: bool = True,
) -> None:
    """Route every logger to `log_dir/orchestrator.log` (rotating) and optionally stderr."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
        handler.close()
    formatter = JsonFormatter()
    handlers: list[logging.Handler] = []
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                log_dir / "orchestrator.log",
                maxBytes=LOG_FILE_BYTES,
                backupCount=LOG_FILE_COUNT,
                encoding="utf-8",
            )
        )
    if console:
        handlers.append(logging.StreamHandler(sys.stderr))
    for handler in handlers:
        handler.setFormatter(formatter)
        handler.addFilter(_RedactingFilter())
        root.addHandler(handler)
    root.setLevel(level)
    # aiogram logs every update at INFO with user text in it; ids are enough at our level.
    logging.getLogger("aiogram.event").setLevel(logging.WARNING)
    logging.getLogger("mcp").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # APScheduler logs two INFO lines per run; the reminder tick runs every second and
    # would fill the rotation with them. Its misses and errors still come through.
    logging.getLogger("apscheduler").setLevel(logging.WARNING)
