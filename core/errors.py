"""One exception tree for taskbot: callers catch `TaskbotError` or one of its families."""

from __future__ import annotations


class TaskbotError(Exception):
    """Root of every error taskbot raises on purpose."""


class ConfigError(TaskbotError):
    """The configuration or the environment is invalid; the message says where."""


class StorageError(TaskbotError):
    """The local store failed to read or write."""


class InputError(TaskbotError):
    """A user's input cannot become a task; nothing was written."""

    def __init__(self, message: str, *, code: str = "invalid", suggestion: str | None = None):
        super().__init__(message)
        self.code = code
        self.suggestion = suggestion


class TaskNotFound(TaskbotError):
    """No task with that id is visible to the caller."""

    def __init__(self, task_ref: object) -> None:
        super().__init__(f"task {task_ref} not found")
        self.task_ref = task_ref


class SchedulingError(TaskbotError):
    """A job or reminder could not be scheduled."""


class IntegrationError(TaskbotError):
    """A call to an external server failed; `server` and `tool` say where."""

    #: Safe to try the same call again (the server may not have seen it).
    retryable: bool = False

    def __init__(self, message: str, *, server: str, tool: str | None = None) -> None:
        super().__init__(message)
        self.server = server
        self.tool = tool

    def __str__(self) -> str:
        where = self.server if self.tool is None else f"{self.server}.{self.tool}"
        return f"[{where}] {self.args[0]}"


class ServerUnavailable(IntegrationError):
    """The server could not be reached, died or timed out: network kind, retried."""

    retryable = True


class ToolFailed(IntegrationError):
    """The server answered with an error or a malformed result: not retried."""


class BreakerOpen(IntegrationError):
    """The server's circuit breaker rejects calls until its cooldown ends."""
