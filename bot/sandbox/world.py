"""The sandbox's in-memory Telegram: chats, message history, the update queue, files, users.

The user-side driver lives here too: `send_text`, `press` and `send_document` act as a person
in a chat would, and the `wait_*` helpers let a test await what the bot does in response. All
of it is synchronous state on one event loop; nothing here knows about HTTP.

LIMIT: message history and uploaded files live as long as the sandbox, so a long
benchmark grows memory by about a kilobyte per message. Evicting history beyond a per-chat cap
would bound it; the sandbox keeps everything so tests can assert on any earlier message.
"""

from __future__ import annotations

import asyncio
import hashlib
import itertools
import mimetypes
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from bot.sandbox.entities import utf16_len

Json = dict[str, Any]
ChatType = Literal["private", "group", "supergroup"]


@dataclass(frozen=True)
class StoredFile:
    """Bytes the bot or a user uploaded, reachable by file_id and by download path."""

    file_id: str
    unique_id: str
    data: bytes
    name: str
    mime_type: str
    path: str

    def as_document(self) -> Json:
        """Describe the file the way a Message.document does."""
        return {
            "file_id": self.file_id,
            "file_unique_id": self.unique_id,
            "file_name": self.name,
            "mime_type": self.mime_type,
            "file_size": len(self.data),
        }


class SandboxWorld:
    """Telegram as one bot sees it, plus the hands of the users talking to it."""

    def __init__(self, token: str, bot_username: str, bot_name: str) -> None:
        bot_id, _, secret = token.partition(":")
        if not bot_id.isdigit() or not secret:
            raise ValueError("token must look like '<digits>:<secret>'")
        self.token = token
        self.bot_user: Json = {
            "id": int(bot_id),
            "is_bot": True,
            "first_name": bot_name,
            "username": bot_username,
        }
        self._updates: deque[Json] = deque()
        self._update_ids = itertools.count(1)
        self._allowed_updates: frozenset[str] | None = None
        self._chats: dict[int, Json] = {}
        self._users: dict[int, Json] = {}
        self._history: dict[int, dict[int, Json]] = {}
        self._last_message_id: dict[int, int] = {}
        self._read_cursor: dict[int, int] = {}
        self._files: dict[str, StoredFile] = {}
        self._files_by_path: dict[str, StoredFile] = {}
        self._pending_callbacks: dict[str, Json] = {}
        self._callback_ids = itertools.count(1)
        # Broadcast signals: set() wakes every current waiter, then a fresh Event replaces it,
        # so waking is O(1) and no waiter can miss a change between its check and its wait.
        self._update_signal = asyncio.Event()
        self._change_signal = asyncio.Event()
        self.edits: list[Json] = []
        self.callback_answers: list[Json] = []
        self.reply_keyboards: dict[int, Json] = {}

    # --- user side -------------------------------------------------------------------------

    def send_text(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int | None = None,
        first_name: str = "Alice",
        language_code: str = "en",
        chat_type: ChatType = "private",
        username: str | None = None,
        reply_to_message_id: int | None = None,
    ) -> Json:
        """Post a user's text message as Telegram would deliver it, and return the Message."""
        user = self._user(chat_id, chat_type, user_id, first_name, username, language_code)
        fields: Json = {"from": user, "text": text}
        if text.startswith("/"):
            command = text.split(maxsplit=1)[0]
            fields["entities"] = [
                {"type": "bot_command", "offset": 0, "length": utf16_len(command)}
            ]
        return self._user_message(chat_id, chat_type, fields, reply_to_message_id)

    def send_document(
        self,
        chat_id: int,
        filename: str,
        data: bytes,
        caption: str | None = None,
        reply_to_message_id: int | None = None,
        *,
        user_id: int | None = None,
        first_name: str = "Alice",
        chat_type: ChatType = "private",
    ) -> Json:
        """Post a user's file upload and return the Message carrying its document."""
        user = self._user(chat_id, chat_type, user_id, first_name, None, "en")
        fields: Json = {"from": user, "document": self.store_file(filename, data).as_document()}
        if caption:
            fields["caption"] = caption
        return self._user_message(chat_id, chat_type, fields, reply_to_message_id)

    def press(self, message: Json, callback_data: str, *, user_id: int | None = None) -> Json:
        """Press an inline button that the message currently shows; return the CallbackQuery."""
        chat = message["chat"]
        current = self._history.get(chat["id"], {}).get(message["message_id"])
        if current is None:
            raise LookupError(f"message {message['message_id']} is not in chat {chat['id']}")
        shown = [
            button.get("callback_data")
            for row in current.get("reply_markup", {}).get("inline_keyboard", [])
            for button in row
        ]
        if callback_data not in shown:
            raise ValueError(f"no button {callback_data!r} on the message; it shows {shown}")
        user = self._user(chat["id"], chat["type"], user_id, "Alice", None, "en")
        query: Json = {
            "id": str(next(self._callback_ids)),
            "from": user,
            "message": current,
            "chat_instance": str(chat["id"]),
            "data": callback_data,
        }
        self._pending_callbacks[query["id"]] = query
        self._push_update("callback_query", query)
        return query

    # --- what a test can observe -----------------------------------------------------------

    def messages(self, chat_id: int, since: int = 0) -> list[Json]:
        """Return the chat's history after message id `since`, as the users would see it."""
        history = self._history.get(chat_id, {})
        if since <= 0:
            return list(history.values())
        # Ids are dense per chat, so walking from `since` costs only the new messages.
        last = self._last_message_id.get(chat_id, 0)
        return [history[i] for i in range(since + 1, last + 1) if i in history]

    def file_bytes(self, file_id: str) -> bytes:
        """Return the content of an uploaded file."""
        return self._files[file_id].data

    async def wait_until(
        self,
        predicate: Callable[[], bool],
        timeout: float = 5.0,  # noqa: ASYNC109 -- one-line waits read best in tests
        what: str = "condition",
    ) -> None:
        """Return once predicate holds, re-checking after every change the bot makes."""
        try:
            async with asyncio.timeout(timeout):
                while not predicate():
                    await self._change_signal.wait()
        except TimeoutError:
            raise TimeoutError(f"sandbox: {what} not seen within {timeout}s") from None

    async def wait_for_messages(
        self,
        chat_id: int,
        count: int = 1,
        timeout: float = 5.0,  # noqa: ASYNC109 -- one-line waits read best in tests
    ) -> list[Json]:
        """Return the next `count` bot messages in the chat that no earlier wait returned."""

        def unread() -> list[Json]:
            cursor = self._read_cursor.get(chat_id, 0)
            return [
                m
                for m in self.messages(chat_id, since=cursor)
                if m["from"]["id"] == self.bot_user["id"]
            ]

        what = f"{count} new bot message(s) in chat {chat_id}"
        await self.wait_until(lambda: len(unread()) >= count, timeout, what)
        fresh = unread()[:count]
        self._read_cursor[chat_id] = fresh[-1]["message_id"]
        return fresh

    # --- shared machinery used by the Bot API side -----------------------------------------

    def store_file(self, name: str, data: bytes, mime_type: str | None = None) -> StoredFile:
        """Keep uploaded bytes and give them a file_id and a download path."""
        digest = hashlib.sha256(data).hexdigest()[:16]
        number = len(self._files) + 1
        suffix = name.rsplit(".", 1)[-1] if "." in name else "bin"
        stored = StoredFile(
            file_id=f"DOC{number}_{digest}",
            unique_id=f"U{digest}",
            data=data,
            name=name,
            mime_type=mime_type or mimetypes.guess_type(name)[0] or "application/octet-stream",
            path=f"documents/file_{number}.{suffix}",
        )
        self._files[stored.file_id] = stored
        self._files_by_path[stored.path] = stored
        return stored

    def _store_message(self, chat_id: int, fields: Json) -> Json:
        message_id = self._last_message_id.get(chat_id, 0) + 1
        self._last_message_id[chat_id] = message_id
        message = {"message_id": message_id, "date": int(time.time()), "chat": self._chats[chat_id]}
        message.update(fields)
        self._history.setdefault(chat_id, {})[message_id] = message
        self._changed()
        return message

    def _replied(self, chat_id: int, message_id: int | None) -> Json | None:
        if message_id is None:
            return None
        target = self._history.get(chat_id, {}).get(message_id)
        if target is None:
            return None
        return {k: v for k, v in target.items() if k != "reply_to_message"}

    def _push_update(self, kind: str, payload: Json) -> Json:
        update = {"update_id": next(self._update_ids), kind: payload}
        if self._allowed_updates is None or kind in self._allowed_updates:
            self._deliver(update)
        return update

    def _deliver(self, update: Json) -> None:
        """Hand an update to the bot; the HTTP side may divert it to a webhook."""
        self._updates.append(update)
        self._wake_pollers()

    def _wake_pollers(self) -> None:
        self._update_signal.set()
        self._update_signal = asyncio.Event()

    def _changed(self) -> None:
        self._change_signal.set()
        self._change_signal = asyncio.Event()

    def _user_message(
        self,
        chat_id: int,
        chat_type: ChatType,
        fields: Json,
        reply_to_message_id: int | None,
    ) -> Json:
        if chat_id not in self._chats:
            self._chats[chat_id] = self._new_chat(chat_id, chat_type, fields["from"])
        if (replied := self._replied(chat_id, reply_to_message_id)) is not None:
            fields["reply_to_message"] = replied
        message = self._store_message(chat_id, fields)
        self._push_update("message", message)
        return message

    @staticmethod
    def _new_chat(chat_id: int, chat_type: ChatType, user: Json) -> Json:
        if chat_type == "private":
            chat = {"id": chat_id, "type": "private", "first_name": user["first_name"]}
            if "username" in user:
                chat["username"] = user["username"]
            return chat
        return {"id": chat_id, "type": chat_type, "title": f"Sandbox group {chat_id}"}

    def _user(
        self,
        chat_id: int,
        chat_type: str,
        user_id: int | None,
        first_name: str,
        username: str | None,
        language_code: str,
    ) -> Json:
        if user_id is None:
            if chat_type != "private":
                raise ValueError("a message in a group needs an explicit user_id")
            user_id = chat_id
        if user_id not in self._users:
            user: Json = {
                "id": user_id,
                "is_bot": False,
                "first_name": first_name,
                "language_code": language_code,
            }
            if username:
                user["username"] = username
            self._users[user_id] = user
        return self._users[user_id]
