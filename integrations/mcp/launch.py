"""How a server is reached: the integration's built-in launch, unless the config says otherwise."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import ConfigError
from core.settings import ServerConfig, resolve_env
from integrations.mcp.handle import ServerHandle
from integrations.mcp.http import HttpServerHandle
from integrations.mcp.stdio import StdioServerHandle

REPO_ROOT = Path(__file__).resolve().parents[2]
#: npm-installed servers (`integrations/node/package.json`), found relative to the checkout.
NODE_BIN = Path(__file__).resolve().parents[1] / "node" / "node_modules" / ".bin"


@dataclass(frozen=True, slots=True)
class Launch:
    """A local stdio launch: what an integration runs when its config names no command."""

    command: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None


def node_server(binary: str, *args: str, env: Mapping[str, str] | None = None) -> Launch:
    """An npm server's launcher script from the project's own node_modules."""
    return Launch(str(NODE_BIN / binary), tuple(args), dict(env or {}))


def python_module(module: str, *args: str, env: Mapping[str, str] | None = None) -> Launch:
    """A Python server run with this interpreter, able to import the project's packages."""
    base = {"PYTHONPATH": str(REPO_ROOT)}
    return Launch(sys.executable, ("-m", module, *args), base | dict(env or {}), REPO_ROOT)


def python_script(script: str, *args: str, env: Mapping[str, str] | None = None) -> Launch:
    """A console script installed beside this interpreter, else its module via `-m`."""
    installed = Path(sys.executable).parent / script
    if installed.exists():
        return Launch(str(installed), tuple(args), dict(env or {}))
    return python_module(script.replace("-", "_"), *args, env=env)


def make_handle(
    name: str,
    config: ServerConfig,
    default: Launch,
    *,
    environ: Mapping[str, str] | None = None,
) -> ServerHandle:
    """The handle the config asks for: HTTP with a key from the environment, or stdio."""
    environ = os.environ if environ is None else environ
    if config.transport == "http":
        return _http_handle(name, config, environ)
    if config.command is not None:
        command, args = config.command, config.args or ()
    else:
        command, args = default.command, config.args if config.args is not None else default.args
    env = dict(default.env) | {key: resolve_env(v, dict(environ)) for key, v in config.env.items()}
    return StdioServerHandle(name, command, args, env, default.cwd)


def _http_handle(name: str, config: ServerConfig, environ: Mapping[str, str]) -> HttpServerHandle:
    if not config.url:
        raise ConfigError(f"servers.{name}: transport 'http' needs a url")
    headers: dict[str, str] = {}
    if config.api_key_env is not None:
        key = environ.get(config.api_key_env, "")
        if not key:
            raise ConfigError(f"servers.{name}: environment variable {config.api_key_env} is empty")
        # LIMIT: the key always travels as a bearer token; a server wanting another header
        # (X-API-Key...) cannot be configured yet. A `api_key_header` config field would fix it.
        headers["Authorization"] = f"Bearer {key}"
    return HttpServerHandle(name, config.url, headers)
