"""Turns a `CallToolResult` into plain Python data, or `ToolFailed` when the server said no."""

from __future__ import annotations

import json
from typing import Any

from mcp_types import CallToolResult, TextContent

from core.errors import ToolFailed
from integrations.mcp.errors import one_line


def decode_result(result: CallToolResult, *, server: str, tool: str) -> object:
    """Structured content (a lone `result` key unwrapped), else decoded text, else the text."""
    texts = [block.text for block in result.content if isinstance(block, TextContent)]
    if result.is_error:
        reason = _error_text(result, texts) or "the tool reported an error"
        raise ToolFailed(one_line(reason), server=server, tool=tool)
    value: object
    if result.structured_content is not None:
        value = _unwrap(result.structured_content)
    elif not texts:
        value = None
    elif len(texts) == 1:
        value = _json_or_text(texts[0])
    else:
        value = [_json_or_text(text) for text in texts]
    if _is_error_shape(value):
        assert isinstance(value, dict)
        raise ToolFailed(one_line(str(value["error"])), server=server, tool=tool)
    return value


def result_size(value: object) -> int:
    """Rough size of a decoded result for logs, which never carry the result itself."""
    if value is None:
        return 0
    if isinstance(value, str | bytes):
        return len(value)
    try:
        return len(json.dumps(value, default=str))
    except ValueError:
        return -1


def _unwrap(structured: dict[str, Any]) -> object:
    """SDK servers wrap a non-object return value as `{"result": value}`."""
    if set(structured) == {"result"}:
        return structured["result"]
    return structured


def _json_or_text(text: str) -> object:
    try:
        return json.loads(text)
    except ValueError:
        return text


def _is_error_shape(value: object) -> bool:
    """DeltaTask-style servers answer failures as `{"error": "..."}` without `isError`."""
    return isinstance(value, dict) and isinstance(value.get("error"), str) and bool(value["error"])


def _error_text(result: CallToolResult, texts: list[str]) -> str:
    structured = result.structured_content
    if structured is not None and isinstance(structured.get("error"), str):
        return str(structured["error"])
    joined = " ".join(texts)
    decoded = _json_or_text(joined) if joined else None
    if _is_error_shape(decoded):
        assert isinstance(decoded, dict)
        return str(decoded["error"])
    return joined
