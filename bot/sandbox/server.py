"""A local Telegram Bot API for tests, demos and benchmarks, driven as if by users.

Contract: `TelegramSandbox` serves `{base_url}/bot{token}/{method}` and
`{base_url}/file/bot{token}/{file_path}` on 127.0.0.1 between `start()` and `stop()` (or inside
`async with`); point aiogram at it with `TelegramAPIServer.from_base(sb.base_url)`. It holds one
bot's world in memory (see `world.py`): users act through `send_text`, `press` and
`send_document`, which queue real Update JSON for `getUpdates` or POST it to the webhook if one
is set. Every answer has Telegram's envelope, `{"ok": true, "result": ...}` or `{"ok": false,
"error_code", "description", "parameters"?}` with the HTTP status equal to error_code, and uses
Telegram's wording for the mistakes a user would notice: text over 4096 characters or empty,
malformed HTML, callback_data over 64 bytes, an edit that changes nothing, a wrong token (401),
an unknown method (404). Only one getUpdates waits at a time: a newer one ends the older with
409, as on Telegram. Method names are case-insensitive. Driver methods are synchronous and must
run on the loop that started the sandbox. stop() then start() binds the same port again and
keeps the world, so a test can stage a Telegram outage the bot must ride out.

Faults for tests: `fail_next(method, ...)` answers the next call(s) with an error,
`block_chat(chat_id)` makes sends and edits there 403, and `set_rate_limit(...)` answers 429
with retry_after when sends exceed a global or per-chat rate per second (off by default).

LIMIT: parse_mode Markdown/MarkdownV2 is accepted but not parsed, so the stored text keeps the
markup and entities are empty; a test asserting on Markdown output sees the raw source. A
MarkdownV2 parser mirroring `entities.py` would remove this.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import math
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from types import TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

from aiohttp import ClientError, ClientSession, ClientTimeout, web

from bot.sandbox.params import (
    MAX_CAPTION,
    MAX_TEXT,
    SandboxApiError,
    Upload,
    bad_request,
    bool_param,
    chat_id_param,
    commands_key,
    formatted_text,
    inline_markup,
    int_param,
    json_param,
    read_params,
    reply_markup_param,
)
from bot.sandbox.world import Json, SandboxWorld, StoredFile

logger = logging.getLogger(__name__)

MAX_UPLOAD = 50 * 1024 * 1024  # Telegram's upload limit for bots; bounds one request body.
_SHUTDOWN_GRACE = 2.0  # Seconds stop() waits for in-flight requests once long polls are woken.

_CHAT_ACTIONS = frozenset(
    {"typing", "upload_photo", "record_video", "upload_video", "record_voice", "upload_voice"}
    | {"upload_document", "choose_sticker", "find_location", "record_video_note"}
    | {"upload_video_note"}
)
_COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")
_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup are "
    "exactly the same as a current content and reply markup of the message"
)
_DEFAULT_DESCRIPTIONS = {
    400: "Bad Request: injected fault",
    403: "Forbidden: bot was blocked by the user",
    500: "Internal Server Error",
    502: "Bad Gateway",
}


class _Window:
    """Count sends in the trailing second, to say how long until one more is allowed."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._times: deque[float] = deque()

    def retry_after(self, now: float) -> int | None:
        while self._times and now - self._times[0] >= 1.0:
            self._times.popleft()
        if len(self._times) < self.limit:
            return None
        return max(1, math.ceil(1.0 - (now - self._times[0])))

    def hit(self, now: float) -> None:
        self._times.append(now)


class TelegramSandbox(SandboxWorld):
    """Serve the Bot API subset taskbot uses, with Telegram's envelope, errors and faults."""

    def __init__(
        self,
        token: str = "123:ABC",
        *,
        port: int = 0,
        bot_username: str = "taskbot_sandbox_bot",
        bot_name: str = "Taskbot",
        group_admins: Iterable[int] = (),
        record_calls: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(token, bot_username, bot_name)
        self.port = port
        self.group_admins: set[int] = set(group_admins)
        self.calls: list[tuple[str, Json]] = []
        self.webhook_failures: list[str] = []
        self._record_calls = record_calls
        self._clock = clock
        self._runner: web.AppRunner | None = None
        self._closing = False
        self._poll_generation = 0
        self._webhook: Json | None = None
        self._webhook_queue: asyncio.Queue[Json] = asyncio.Queue()
        self._webhook_task: asyncio.Task[None] | None = None
        self._commands: dict[tuple[str, str], list[Json]] = {}
        self._faults: dict[str, deque[SandboxApiError]] = {}
        self._blocked: set[int] = set()
        self._global_window: _Window | None = None
        self._per_chat_limit: int | None = None
        self._chat_windows: dict[int, _Window] = {}
        handlers: dict[str, Callable[[Json], Awaitable[Any]]] = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "sendDocument": self._send_document,
            "getFile": self._get_file,
            "sendChatAction": self._send_chat_action,
            "getChat": self._get_chat,
            "getChatMember": self._get_chat_member,
        }
        self._methods = {name.lower(): (name, handler) for name, handler in handlers.items()}

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """Root URL to hand to `TelegramAPIServer.from_base`; valid after start()."""
        if self._runner is None:
            raise RuntimeError("the sandbox is not running")
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Bind 127.0.0.1 (a free port if port is 0) and begin answering."""
        app = web.Application(client_max_size=MAX_UPLOAD)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        app.router.add_post("/sandbox/send_text", self._handle_poke)
        # handler_cancellation: a poller that hangs up stops waiting here too.
        runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=_SHUTDOWN_GRACE
        )
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.port).start()
        self.port = runner.addresses[0][1]
        self._runner, self._closing = runner, False

    async def stop(self) -> None:
        """Release waiting polls, stop webhook delivery and close the port."""
        self._closing = True
        self._wake_pollers()
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_task
            self._webhook_task = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()

    # --- fault injection -------------------------------------------------------------------

    def fail_next(
        self,
        method: str,
        error_code: int = 429,
        retry_after: int = 2,
        description: str | None = None,
        times: int = 1,
    ) -> None:
        """Answer the next `times` calls of `method` with an error instead of doing them."""
        if description is None:
            default = f"Too Many Requests: retry after {retry_after}"
            description = _DEFAULT_DESCRIPTIONS.get(error_code, default)
        wait = retry_after if error_code == 429 else None
        queue = self._faults.setdefault(method.lower(), deque())
        queue.extend(SandboxApiError(error_code, description, wait) for _ in range(times))

    def block_chat(self, chat_id: int) -> None:
        """Behave as if the user blocked the bot: sends and edits there answer 403."""
        self._blocked.add(chat_id)

    def unblock_chat(self, chat_id: int) -> None:
        """Let the bot reach the chat again."""
        self._blocked.discard(chat_id)

    def set_rate_limit(
        self,
        global_per_second: int | None = 30,
        per_chat_per_second: int | None = 1,
    ) -> None:
        """Answer sends over these rates with 429 and retry_after; None turns a rule off."""
        self._global_window = _Window(global_per_second) if global_per_second else None
        self._per_chat_limit = per_chat_per_second
        self._chat_windows.clear()

    # --- HTTP edge -------------------------------------------------------------------------

    async def _handle_api(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return SandboxApiError(401, "Unauthorized").response()
        entry = self._methods.get(request.match_info["method"].lower())
        if entry is None:
            return SandboxApiError(404, "Not Found").response()
        name = entry[0]
        try:
            params = await read_params(request)
            return web.json_response({"ok": True, "result": await self._invoke(name, params)})
        except SandboxApiError as error:
            return error.response()

    async def _invoke(self, name: str, params: Json) -> Any:
        """Run one Bot API call through faults, blocking and rate rules, then the method."""
        if self._record_calls:
            self.calls.append((name, params))
            self._changed()
        if queue := self._faults.get(name.lower()):
            raise queue.popleft()
        chat_id = chat_id_param(params) if name.startswith(("send", "edit")) else None
        if chat_id in self._blocked:
            raise SandboxApiError(403, "Forbidden: bot was blocked by the user")
        if chat_id is not None and name.startswith("send") and name != "sendChatAction":
            self._check_rate(chat_id)
        return await self._methods[name.lower()][1](params)

    def _check_rate(self, chat_id: int) -> None:
        now = self._clock()
        windows = [self._global_window] if self._global_window else []
        if self._per_chat_limit:
            window = self._chat_windows.get(chat_id)
            if window is None:
                window = self._chat_windows[chat_id] = _Window(self._per_chat_limit)
            windows.append(window)
        waits = [w for window in windows if (w := window.retry_after(now)) is not None]
        if waits:
            wait = max(waits)
            raise SandboxApiError(429, f"Too Many Requests: retry after {wait}", wait)
        for window in windows:
            window.hit(now)

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return SandboxApiError(401, "Unauthorized").response()
        stored = self._files_by_path.get(request.match_info["path"])
        if stored is None:
            return SandboxApiError(404, "Not Found").response()
        return web.Response(body=stored.data, content_type=stored.mime_type)

    async def _handle_poke(self, request: web.Request) -> web.StreamResponse:
        """Let a human at the CLI play a user: POST {"chat_id", "text"} as JSON."""
        try:
            body = await request.json()
            message = self.send_text(int(body["chat_id"]), str(body["text"]))
        except (KeyError, TypeError, ValueError) as error:
            return bad_request(f"expected JSON with chat_id and text: {error}").response()
        return web.json_response({"ok": True, "result": message})

    # --- updates and webhook ---------------------------------------------------------------

    async def _get_me(self, p: Json) -> Json:
        return {
            **self.bot_user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    async def _get_updates(self, p: Json) -> list[Json]:
        if self._webhook is not None:
            raise SandboxApiError(
                409,
                "Conflict: can't use getUpdates method while webhook is active; "
                "use deleteWebhook to delete the webhook first",
            )
        self._poll_generation += 1
        generation = self._poll_generation
        self._wake_pollers()  # An older poll still waiting must now end with 409.
        if "allowed_updates" in p:
            self._set_allowed_updates(json_param(p, "allowed_updates"))
        self._confirm(int_param(p, "offset", 0))
        limit = min(max(int_param(p, "limit", 100), 1), 100)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(max(int_param(p, "timeout", 0), 0)):
                while not (self._updates or self._closing):
                    await self._update_signal.wait()
                    if generation != self._poll_generation:
                        raise SandboxApiError(
                            409,
                            "Conflict: terminated by other getUpdates request; "
                            "make sure that only one bot instance is running",
                        )
        return list(itertools.islice(self._updates, limit))

    def _confirm(self, offset: int) -> None:
        """Forget updates the bot acknowledged: all below a positive offset, or keep the tail."""
        if offset > 0:
            while self._updates and self._updates[0]["update_id"] < offset:
                self._updates.popleft()
        elif offset < 0:
            while len(self._updates) > -offset:
                self._updates.popleft()

    def _set_allowed_updates(self, kinds: list[str] | None) -> None:
        self._allowed_updates = frozenset(kinds) if kinds else None
        if self._allowed_updates is not None:
            allowed = self._allowed_updates
            self._updates = deque(u for u in self._updates if allowed & u.keys())

    def _deliver(self, update: Json) -> None:
        if self._webhook is None:
            super()._deliver(update)
        else:
            self._webhook_queue.put_nowait(update)

    async def _set_webhook(self, p: Json) -> bool:
        url = str(p.get("url") or "")
        if not url:
            return await self._delete_webhook(p)
        if urlsplit(url).hostname not in ("127.0.0.1", "localhost"):
            raise bad_request("bad webhook: the sandbox delivers to 127.0.0.1 only")
        self._webhook = {"url": url, "secret_token": p.get("secret_token")}
        if "allowed_updates" in p:
            self._set_allowed_updates(json_param(p, "allowed_updates"))
        if bool_param(p, "drop_pending_updates"):
            self._updates.clear()
        while self._updates:
            self._webhook_queue.put_nowait(self._updates.popleft())
        if self._webhook_task is None:
            self._webhook_task = asyncio.create_task(self._deliver_webhook())
        return True

    async def _delete_webhook(self, p: Json) -> bool:
        self._webhook = None
        if bool_param(p, "drop_pending_updates"):
            self._updates.clear()
        return True

    async def _get_webhook_info(self, p: Json) -> Json:
        hook = self._webhook or {}
        pending = len(self._updates) + self._webhook_queue.qsize()
        return {
            "url": hook.get("url", ""),
            "has_custom_certificate": False,
            "pending_update_count": pending,
        }

    async def _deliver_webhook(self) -> None:
        """POST queued updates one at a time, running a method the bot answers with inline.

        LIMIT: a failed delivery is recorded in `webhook_failures` and dropped, where Telegram
        retries it for a while; a test of webhook outages cannot see redelivery. A retry queue
        with backoff here would add it.
        """
        async with ClientSession(timeout=ClientTimeout(total=10)) as session:
            while True:
                update = await self._webhook_queue.get()
                if self._webhook is None:  # Removed meanwhile: the update goes back to polling.
                    super()._deliver(update)
                    continue
                try:
                    reply = await _post_update(session, self._webhook, update)
                except (ClientError, TimeoutError, ValueError) as error:
                    self.webhook_failures.append(f"update {update['update_id']}: {error}")
                    logger.warning("sandbox.webhook.failed", extra={"update": update["update_id"]})
                    continue
                if isinstance(reply, dict) and isinstance(reply.get("method"), str):
                    await self._run_webhook_reply(reply)

    async def _run_webhook_reply(self, reply: Json) -> None:
        entry = self._methods.get(str(reply.pop("method")).lower())
        if entry is None:
            return
        with contextlib.suppress(SandboxApiError):
            await self._invoke(entry[0], reply)

    # --- commands --------------------------------------------------------------------------

    async def _set_my_commands(self, p: Json) -> bool:
        commands = json_param(p, "commands") or []
        for command in commands:
            if not _COMMAND_NAME.fullmatch(str(command.get("command", ""))):
                raise bad_request("BOT_COMMAND_INVALID")
            if not command.get("description"):
                raise bad_request("command description is empty")
        self._commands[commands_key(p)] = commands
        return True

    async def _get_my_commands(self, p: Json) -> list[Json]:
        return self._commands.get(commands_key(p), [])

    async def _delete_my_commands(self, p: Json) -> bool:
        self._commands.pop(commands_key(p), None)
        return True

    # --- messages --------------------------------------------------------------------------

    async def _send_message(self, p: Json) -> Json:
        chat_id = self._known_chat(p)
        text, entities = formatted_text(p, "text", MAX_TEXT, "message")
        return self._bot_message(chat_id, p, {"text": text, "entities": entities})

    async def _send_document(self, p: Json) -> Json:
        chat_id = self._known_chat(p)
        caption, entities = formatted_text(p, "caption", MAX_CAPTION, "message caption")
        stored = self._document(p.get("document"), p)
        fields = {
            "document": stored.as_document(),
            "caption": caption,
            "caption_entities": entities,
        }
        return self._bot_message(chat_id, p, fields)

    def _bot_message(self, chat_id: int, p: Json, fields: Json) -> Json:
        markup = reply_markup_param(p)
        reply_parameters = json_param(p, "reply_parameters") or {}
        reply_to = int_param(p, "reply_to_message_id", 0) or reply_parameters.get("message_id")
        replied = self._replied(chat_id, reply_to)
        if reply_to and replied is None and not bool_param(p, "allow_sending_without_reply"):
            raise bad_request("message to be replied not found")
        fields = {"from": self.bot_user, **{k: v for k, v in fields.items() if v}}
        if replied is not None:
            fields["reply_to_message"] = replied
        if markup and "inline_keyboard" in markup:
            fields["reply_markup"] = markup
        elif markup and "keyboard" in markup:
            self.reply_keyboards[chat_id] = markup
        elif markup and markup.get("remove_keyboard"):
            self.reply_keyboards.pop(chat_id, None)
        return self._store_message(chat_id, fields)

    async def _edit_message_text(self, p: Json) -> Json:
        message = self._own_message(p, "edit")
        if "text" not in message:
            raise bad_request("there is no text in the message to edit")
        text, entities = formatted_text(p, "text", MAX_TEXT, "message")
        return self._apply_edit(message, {"text": text, "entities": entities}, inline_markup(p))

    async def _edit_message_reply_markup(self, p: Json) -> Json:
        message = self._own_message(p, "edit")
        return self._apply_edit(message, {}, inline_markup(p))

    def _apply_edit(self, message: Json, content: Json, markup: Json | None) -> Json:
        before = {key: message.get(key) or None for key in content}
        after = {key: value or None for key, value in content.items()}
        if before == after and message.get("reply_markup") == markup:
            raise SandboxApiError(400, _NOT_MODIFIED)
        for key, value in {**after, "reply_markup": markup}.items():
            if value is None:
                message.pop(key, None)
            else:
                message[key] = value
        message["edit_date"] = int(time.time())
        self.edits.append(dict(message))
        self._changed()
        return message

    async def _delete_message(self, p: Json) -> bool:
        message = self._own_message(p, "delete", own_only=False)
        del self._history[message["chat"]["id"]][message["message_id"]]
        self._changed()
        return True

    def _own_message(self, p: Json, verb: str, *, own_only: bool = True) -> Json:
        if "inline_message_id" in p:
            raise bad_request("inline messages are not supported by the sandbox")
        chat_id = self._known_chat(p)
        message = self._history.get(chat_id, {}).get(int_param(p, "message_id", 0))
        if message is None:
            raise bad_request(f"message to {verb} not found")
        if own_only and message["from"]["id"] != self.bot_user["id"]:
            raise bad_request(f"message can't be {verb}ed")
        return message

    async def _answer_callback_query(self, p: Json) -> bool:
        query_id = str(p.get("callback_query_id", ""))
        query = self._pending_callbacks.pop(query_id, None)
        if query is None:
            raise bad_request(
                "query is too old and response timeout expired or query ID is invalid"
            )
        answer = {"callback_query_id": query_id, "data": query["data"], "text": p.get("text")}
        self.callback_answers.append({**answer, "show_alert": bool_param(p, "show_alert")})
        self._changed()
        return True

    async def _send_chat_action(self, p: Json) -> bool:
        self._known_chat(p)
        if p.get("action") not in _CHAT_ACTIONS:
            raise bad_request("wrong parameter action in request")
        return True

    # --- files, chats, members -------------------------------------------------------------

    def _document(self, value: Any, p: Json) -> StoredFile:
        if isinstance(value, str) and value.startswith("attach://"):
            value = p.get(value.removeprefix("attach://"))
        if isinstance(value, Upload):
            return self.store_file(value.filename, value.data)
        if isinstance(value, str) and value in self._files:
            return self._files[value]
        raise bad_request("wrong file identifier/HTTP URL specified")

    async def _get_file(self, p: Json) -> Json:
        stored = self._files.get(str(p.get("file_id", "")))
        if stored is None:
            raise bad_request("invalid file_id")
        return {
            "file_id": stored.file_id,
            "file_unique_id": stored.unique_id,
            "file_size": len(stored.data),
            "file_path": stored.path,
        }

    async def _get_chat(self, p: Json) -> Json:
        chat = self._chats[self._known_chat(p)]
        gifts = (
            "unlimited_gifts limited_gifts unique_gifts premium_subscription gifts_from_channels"
        )
        return {
            **chat,
            "accent_color_id": 0,
            "max_reaction_count": 11,
            "accepted_gift_types": dict.fromkeys(gifts.split(), False),
        }

    async def _get_chat_member(self, p: Json) -> Json:
        chat_id = self._known_chat(p)
        user_id = int_param(p, "user_id", 0)
        user = self._users.get(user_id, {"id": user_id, "is_bot": False, "first_name": "User"})
        if self._chats[chat_id]["type"] == "private" or user_id not in self.group_admins:
            return {"status": "member", "user": user}
        rights = (
            "can_be_edited is_anonymous can_manage_chat can_delete_messages can_manage_video_chats "
            "can_restrict_members can_promote_members can_change_info can_invite_users "
            "can_post_stories can_edit_stories can_delete_stories can_send_welcome_messages"
        )
        return {"status": "administrator", "user": user, **dict.fromkeys(rights.split(), False)}

    def _known_chat(self, p: Json) -> int:
        chat_id = chat_id_param(p)
        if chat_id is None:
            raise bad_request("chat_id is empty")
        if chat_id not in self._chats:
            raise bad_request("chat not found")
        return chat_id


async def _post_update(session: ClientSession, hook: Json, update: Json) -> Any:
    headers = {}
    if hook.get("secret_token"):
        headers["X-Telegram-Bot-Api-Secret-Token"] = str(hook["secret_token"])
    async with session.post(hook["url"], json=update, headers=headers) as response:
        if response.status >= 300:
            raise ClientError(f"HTTP {response.status}")
        body = await response.text()
    return json.loads(body) if body.strip() else None
