"""Read Bot API parameters from JSON or form bodies and check them the way Telegram does.

JSON bodies carry types while forms (what aiogram sends) carry strings, so every reader here
accepts both. Validation failures are `SandboxApiError`s with Telegram's wording.
"""

from __future__ import annotations

import json
from typing import Any

from aiohttp import web

from bot.sandbox.entities import HtmlParseError, parse_html
from bot.sandbox.world import Json

MAX_TEXT = 4096
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64

_BUTTON_ACTIONS = frozenset(
    {"url", "callback_data", "web_app", "login_url", "switch_inline_query", "copy_text", "pay"}
    | {"switch_inline_query_current_chat", "switch_inline_query_chosen_chat", "callback_game"}
)


class SandboxApiError(Exception):
    """A Bot API error, turned into Telegram's error envelope at one choke point."""

    def __init__(self, code: int, description: str, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.code, self.description, self.retry_after = code, description, retry_after

    def response(self) -> web.Response:
        """Render the error the way Telegram does."""
        body: Json = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return web.json_response(body, status=self.code)


def bad_request(description: str) -> SandboxApiError:
    return SandboxApiError(400, f"Bad Request: {description}")


class Upload:
    """A multipart file part, kept until a method claims it."""

    def __init__(self, filename: str, data: bytes) -> None:
        self.filename, self.data = filename, data


async def read_params(request: web.Request) -> Json:
    params: Json = dict(request.query)
    if request.content_type == "application/json":
        body = await request.json()
        if not isinstance(body, dict):
            raise bad_request("parameters must be a JSON object")
        params.update(body)
    elif request.body_exists:
        for key, value in (await request.post()).items():
            if isinstance(value, web.FileField):
                params[key] = Upload(value.filename, value.file.read())
            else:
                params[key] = value if isinstance(value, str) else value.decode()
    return params


def int_param(p: Json, key: str, default: int) -> int:
    value = p.get(key)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise bad_request(f"invalid {key} specified") from None


def bool_param(p: Json, key: str) -> bool:
    return p.get(key) in (True, "true", "True", "1", 1)


def json_param(p: Json, key: str) -> Any:
    value = p.get(key)
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        raise bad_request(f"can't parse {key} JSON object") from None


def chat_id_param(p: Json) -> int | None:
    value = p.get("chat_id")
    if isinstance(value, str) and value.startswith("@"):
        raise bad_request("chat not found")
    return None if value in (None, "") else int_param(p, "chat_id", 0)


def commands_key(p: Json) -> tuple[str, str]:
    scope = json_param(p, "scope") or {"type": "default"}
    return json.dumps(scope, sort_keys=True), str(p.get("language_code") or "")


def formatted_text(p: Json, key: str, limit: int, what: str) -> tuple[str, list[Json]]:
    """Apply parse_mode and Telegram's length rules; captions may be empty, texts not."""
    source = str(p.get(key) or "")
    entities: list[Json] = (
        json_param(p, f"{key}_entities" if key == "caption" else "entities") or []
    )
    mode = str(p.get("parse_mode") or "")
    if mode.lower() == "html":
        try:
            source, entities = parse_html(source)
        except HtmlParseError as error:
            raise bad_request(f"can't parse entities: {error}") from None
    elif mode and mode.lower() not in ("markdown", "markdownv2"):
        raise bad_request(f"unsupported parse_mode {mode!r}")
    if key == "text" and not source.strip():
        raise bad_request("message text is empty")
    if len(source) > limit:
        raise bad_request(f"{what} is too long")
    return source, entities


def reply_markup_param(p: Json) -> Json | None:
    markup = json_param(p, "reply_markup")
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    for row in markup.get("inline_keyboard", []):
        for button in row:
            _check_button(button)
    return markup


def inline_markup(p: Json) -> Json | None:
    markup = reply_markup_param(p)
    return markup if markup and "inline_keyboard" in markup else None


def _check_button(button: Json) -> None:
    if not button.get("text"):
        raise bad_request("can't parse inline keyboard button: Text must be non-empty")
    if not _BUTTON_ACTIONS & button.keys():
        raise bad_request(
            "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
        )
    data = button.get("callback_data")
    if data is not None and not 1 <= len(str(data).encode()) <= MAX_CALLBACK_DATA:
        raise bad_request("BUTTON_DATA_INVALID")
