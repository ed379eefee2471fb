"""Routers of the bot, in the order the dispatcher tries them."""

from aiogram import Router

from bot.handlers import admin, common, errors, tasks


def build_router() -> Router:
    root = Router(name="taskbot")
    root.include_routers(common.router, tasks.router, admin.router, errors.router)
    return root
