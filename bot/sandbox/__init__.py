"""A local Telegram Bot API that tests, the demo and benchmarks point aiogram at."""

from bot.sandbox.params import SandboxApiError
from bot.sandbox.server import TelegramSandbox
from bot.sandbox.world import StoredFile

__all__ = ["SandboxApiError", "StoredFile", "TelegramSandbox"]
