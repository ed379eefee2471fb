"""Who may change a task: its author, its assignee, or an admin of the group it lives in.

LIMIT: the assignee is known by @username only, so a user without one cannot be assigned and
one who renames loses the right until reassigned. Storing the user id once the assignee first
writes in the chat would fix it.
LIMIT: admin status is asked of Telegram (getChatMember), never cached, whenever someone other
than the author or assignee changes a task: one extra API call each time. A short per-chat
cache would save it, at the price of a demoted admin keeping rights for the cache's lifetime.
"""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.enums import ChatMemberStatus, ChatType
from aiogram.exceptions import TelegramAPIError
from aiogram.types import Chat, User

from bot.texts import text
from core.errors import TaskNotFound
from core.models import Task
from core.orchestrator import EnterpriseTaskOrchestrator

log = logging.getLogger("taskbot.bot")

_ADMIN_STATUSES = frozenset({ChatMemberStatus.ADMINISTRATOR, ChatMemberStatus.CREATOR})


async def may_change(
    bot: Bot,
    chat: Chat,
    user: User,
    task: Task,
    *,
    sender_chat: Chat | None = None,
) -> bool:
    """True for the author, the assignee (by @username) and group admins; always in private."""
    if chat.type == ChatType.PRIVATE:
        return True  # a private chat's tasks are its one user's
    if task.author_id == user.id:
        return True
    if task.assignee and user.username and user.username.lower() == task.assignee:
        return True
    if sender_chat is not None and sender_chat.id == chat.id:
        return True  # an anonymous admin, posting as the group itself
    return await is_group_admin(bot, chat.id, user.id)


async def is_group_admin(bot: Bot, chat_id: int, user_id: int) -> bool:
    """Ask Telegram; a failed lookup means no (refusing is the safe side)."""
    try:
        member = await bot.get_chat_member(chat_id, user_id)
    except TelegramAPIError as exc:
        log.warning(
            "permissions.lookup_failed",
            extra={"chat_id": chat_id, "user_id": user_id, "error": type(exc).__name__},
        )
        return False
    return member.status in _ADMIN_STATUSES


async def find_task(orch: EnterpriseTaskOrchestrator, chat_id: int, task_id: int) -> Task | None:
    """The task if it lives in this chat (and is not deleted), else None."""
    try:
        return await orch.get_task(task_id, chat_id=chat_id)
    except TaskNotFound:
        return None


async def task_for_change(
    orch: EnterpriseTaskOrchestrator,
    bot: Bot,
    chat: Chat,
    user: User | None,
    task_id: int,
    lang: str,
    *,
    sender_chat: Chat | None = None,
) -> Task | str:
    """The task if this user may change it here, else the reply that says why not."""
    task = await find_task(orch, chat.id, task_id)
    if task is None:
        return text(lang, "not_found", id=task_id)
    if user is None or not await may_change(bot, chat, user, task, sender_chat=sender_chat):
        return text(lang, "not_permitted")
    return task
