"""Routers of the bot, in the order the dispatcher tries them.

Each module builds a fresh router per dispatcher (`build_router`): an aiogram router can
belong to one parent only, and tests start a new bot, with a new dispatcher, per test.
"""

from aiogram import Router

from bot.handlers import (
    admin,
    backup,
    calendar,
    common,
    errors,
    knowledge,
    notify,
    planning,
    reminders,
    settings,
    tasks,
    tracking,
    wizard,
)


def build_router() -> Router:
    root = Router(name="taskbot")
    root.include_router(reminders.build_router())  # before tasks: its catch-all eats r1 buttons
    # The wizard's state handlers come before any handler of plain text; tasks keeps the
    # catch-alls (stale buttons, text nobody asked for), so it goes after every command.
    root.include_routers(
        wizard.build_router(),
        common.build_router(),
        settings.build_router(),
        admin.build_router(),
        planning.build_router(),
        knowledge.build_router(),  # before tasks: its /search (by meaning) replaces the words one
        tracking.build_router(),  # before tasks: takes the timer button while tracking is live
        calendar.build_router(),  # before tasks: takes `/export ics`, leaves a bare /export
        notify.build_router(),
        backup.build_router(),
        tasks.build_router(),
        errors.build_router(),
    )
    return root
