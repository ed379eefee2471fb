"""Configuration: the spec's `enterprise_config.json` shape, validated; secrets only from env.

`load_config` accepts the specification's file as is. Anything that looks like a secret
(a bot token, an API key) must be an environment reference such as `"${BOT_TOKEN}"`; a
literal secret in the file is refused, so a config can be committed safely.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from core.errors import ConfigError

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "config" / "enterprise_config.json"
SERVER_NAMES = (
    "deltatask",
    "shrimp-task-manager",
    "hpkv-memory",
    "memory",
    "calendar",
    "notifications",
    "time-tracker",
    "git",
    "filesystem",
    "backup",
)
_ENV_REF = re.compile(r"^\$\{([A-Z_][A-Z0-9_]*)\}$")
_SECRET_KEY = re.compile(r"token|secret|password|passwd|api_?key", re.IGNORECASE)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerConfig(_Strict):
    """One MCP server entry; only the first four keys are the spec's, the rest optional."""

    enabled: bool = True
    priority: Annotated[int, Field(ge=1, le=10)] = 3
    timeout: Annotated[float, Field(gt=0, le=300)] = 10.0
    retry_attempts: Annotated[int, Field(ge=0, le=10)] = 3
    required: bool = False
    transport: Literal["stdio", "http"] = "stdio"
    command: str | None = None  # overrides the integration's built-in launch command
    args: tuple[str, ...] | None = None
    env: dict[str, str] = Field(default_factory=dict)
    url: str | None = None  # streamable HTTP endpoint when transport is "http"
    api_key_env: str | None = None  # name of the env var holding the API key

    @field_validator("env")
    @classmethod
    def _no_literal_secrets(cls, value: dict[str, str]) -> dict[str, str]:
        for key, item in value.items():
            if _SECRET_KEY.search(key) and item and not _ENV_REF.match(item):
                raise ValueError(f'{key}: secrets come only from the environment: "${{{key}}}"')
        return value

    @field_validator("url")
    @classmethod
    def _no_password_in_url(cls, value: str | None) -> str | None:
        if value is not None and re.match(r"^[a-z][a-z0-9+.-]*://[^/@]+:[^/@]*@", value, re.I):
            raise ValueError("a password in the URL is a secret: use api_key_env instead")
        return value

    @field_validator("api_key_env")
    @classmethod
    def _env_name(cls, value: str | None) -> str | None:
        if value is not None and not re.fullmatch(r"[A-Z_][A-Z0-9_]*", value):
            raise ValueError("must be the NAME of an environment variable, not a key")
        return value

    @model_validator(mode="after")
    def _http_has_url(self) -> ServerConfig:
        if self.transport == "http" and not self.url:
            raise ValueError("transport 'http' needs a url")
        return self


class RateLimiting(_Strict):
    enabled: bool = True
    requests_per_minute: Annotated[int, Field(ge=1, le=100_000)] = 100


class Security(_Strict):
    api_key_required: bool = False
    rate_limiting: RateLimiting = RateLimiting()


class TelegramNotifications(_Strict):
    bot_token: str = "${BOT_TOKEN}"
    chat_id: str = "${ADMIN_CHAT_ID}"

    @field_validator("bot_token")
    @classmethod
    def _token_from_env(cls, value: str) -> str:
        if value and not _ENV_REF.match(value):
            raise ValueError('secrets come only from the environment: write "${BOT_TOKEN}"')
        return value


class Notifications(_Strict):
    telegram: TelegramNotifications = TelegramNotifications()


class Defaults(_Strict):
    timezone: str = "UTC"
    language: Literal["en", "ru"] = "en"


class AppConfig(_Strict):
    """The whole configuration after validation."""

    servers: dict[str, ServerConfig]
    sync_interval: Annotated[float, Field(gt=0)] = 300
    health_check_interval: Annotated[float, Field(gt=0)] = 60
    backup_interval: Annotated[float, Field(gt=0)] = 86400  # seconds between scheduled backups
    circuit_breaker_threshold: Annotated[int, Field(ge=1, le=1000)] = 5
    circuit_breaker_cooldown: Annotated[float, Field(gt=0)] = 30
    monitoring_enabled: bool = True
    security: Security = Security()
    notifications: Notifications = Notifications()
    defaults: Defaults = Defaults()

    @field_validator("servers")
    @classmethod
    def _known_servers(cls, value: dict[str, ServerConfig]) -> dict[str, ServerConfig]:
        unknown = sorted(set(value) - set(SERVER_NAMES))
        if unknown:
            raise ValueError(f"unknown server(s) {unknown}; known: {list(SERVER_NAMES)}")
        return value

    def enabled_servers(self) -> dict[str, ServerConfig]:
        return {name: cfg for name, cfg in self.servers.items() if cfg.enabled}

    def with_servers(self, **changes: dict[str, Any]) -> AppConfig:
        """Copy with some server entries changed (tests, demo, CLI flags)."""
        servers = dict(self.servers)
        for name, fields in changes.items():
            key = name.replace("_", "-")
            servers[key] = servers[key].model_copy(update=fields)
        return self.model_copy(update={"servers": servers})


def _format_errors(exc: ValidationError) -> str:
    lines = []
    for err in exc.errors():
        where = ".".join(str(p) for p in err["loc"]) or "(root)"
        lines.append(f"  {where}: {err['msg']}")
    return "\n".join(lines)


def parse_config(data: object, *, source: str = "<config>") -> AppConfig:
    """Validate a decoded config; ConfigError lists every bad key with its path."""
    try:
        return AppConfig.model_validate(data)
    except ValidationError as exc:
        problems = _format_errors(exc)
        unknown = _unknown_servers(data)
        if unknown and "unknown server" not in problems:
            # The servers check runs only once every entry is valid: say it now as well.
            problems += f"\n  servers: unknown server(s) {unknown}; known: {list(SERVER_NAMES)}"
        raise ConfigError(f"invalid config {source}:\n{problems}") from exc


def _unknown_servers(data: object) -> list[str]:
    servers = data.get("servers") if isinstance(data, dict) else None
    return sorted(set(servers) - set(SERVER_NAMES)) if isinstance(servers, dict) else []


def load_config(path: str | os.PathLike[str] | None = None) -> AppConfig:
    """Read the config from `path`, `$TASKBOT_CONFIG` or the shipped default."""
    chosen = Path(path or os.environ.get("TASKBOT_CONFIG") or DEFAULT_CONFIG_PATH)
    try:
        text = chosen.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"cannot read config {chosen}: {exc.strerror}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config {chosen} is not JSON: line {exc.lineno}: {exc.msg}") from exc
    return parse_config(data, source=str(chosen))


def resolve_env(value: str, environ: dict[str, str] | None = None) -> str:
    """Turn `"${NAME}"` into the variable's value ('' when unset); other text as is."""
    match = _ENV_REF.match(value)
    if not match:
        return value
    return (environ if environ is not None else os.environ).get(match.group(1), "")


def _ids(raw: str) -> frozenset[int]:
    out: set[int] = set()
    for part in raw.replace(";", ",").split(","):
        part = part.strip()
        if not part:
            continue
        try:
            out.add(int(part))
        except ValueError as exc:
            raise ConfigError(f"not a Telegram id: {part!r}") from exc
    return frozenset(out)


class RuntimeEnv(BaseModel):
    """What the process takes from its environment; repr never shows the token."""

    model_config = ConfigDict(frozen=True)

    bot_token: str = Field(default="", repr=False)
    telegram_api_base: str | None = None
    data_dir: Path = Path("data")
    admin_chat_id: int | None = None
    admin_ids: frozenset[int] = frozenset()
    allowed_user_ids: frozenset[int] = frozenset()

    @classmethod
    def from_environ(cls, environ: dict[str, str] | None = None) -> RuntimeEnv:
        env = dict(os.environ if environ is None else environ)
        admin_chat = env.get("ADMIN_CHAT_ID", "").strip()
        try:
            admin_chat_id = int(admin_chat) if admin_chat else None
        except ValueError as exc:
            raise ConfigError(f"ADMIN_CHAT_ID is not a chat id: {admin_chat!r}") from exc
        return cls(
            bot_token=env.get("BOT_TOKEN", ""),
            telegram_api_base=env.get("TELEGRAM_API_BASE") or None,
            data_dir=Path(env.get("TASKBOT_DATA_DIR") or "data"),
            admin_chat_id=admin_chat_id,
            admin_ids=_ids(env.get("ADMIN_IDS", "")),
            allowed_user_ids=_ids(env.get("ALLOWED_USER_IDS", "")),
        )
