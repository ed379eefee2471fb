"""taskbot's core: domain, store and orchestration. Never imports aiogram."""

from core.errors import (
    BreakerOpen,
    ConfigError,
    InputError,
    IntegrationError,
    SchedulingError,
    ServerUnavailable,
    StorageError,
    TaskbotError,
    TaskNotFound,
    ToolFailed,
)
from core.integration import Integration
from core.models import Change, Operation, ServerStatus, Task, TaskDraft, TaskStatus
from core.orchestrator import EnterpriseTaskOrchestrator
from core.settings import AppConfig, ServerConfig, load_config

__all__ = [
    "AppConfig",
    "BreakerOpen",
    "Change",
    "ConfigError",
    "EnterpriseTaskOrchestrator",
    "InputError",
    "Integration",
    "IntegrationError",
    "Operation",
    "SchedulingError",
    "ServerConfig",
    "ServerStatus",
    "ServerUnavailable",
    "StorageError",
    "Task",
    "TaskDraft",
    "TaskNotFound",
    "TaskStatus",
    "TaskbotError",
    "ToolFailed",
    "load_config",
]
