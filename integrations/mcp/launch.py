"""How a server is reached: the integration's built-in launch, unless the config says otherwise.

A built-in launch that runs a Python module of this interpreter is forked from the fork
server (integrations/mcp/forking.py), which has the MCP SDK imported already, instead of
spawned cold; TASKBOT_FORK_SERVERS=0 in the environment turns that off. A server the config
gives its own command or arguments is always spawned as configured.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from core.errors import ConfigError
from core.settings import ServerConfig, resolve_env
from integrations.mcp.forking import ForkedServerHandle
from integrations.mcp.handle import ServerHandle
from integrations.mcp.http import HttpServerHandle
from integrations.mcp.stdio import StdioServerHandle

REPO_ROOT = Path(__file__).resolve().parents[2]
#: npm-installed servers (`integrations/node/package.json`), found relative to the checkout.
NODE_BIN = Path(__file__).resolve().parents[1] / "node" / "node_modules" / ".bin"
#: Environment switch: "0" spawns every Python server cold, as any other command.
FORK_SWITCH = "TASKBOT_FORK_SERVERS"


@dataclass(frozen=True, slots=True)
class Launch:
    """A local stdio launch: what an integration runs when its config names no command."""

    command: str
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    #: The same launch as `python -m module *module_args` run by this interpreter, when it
    #: is one: such a launch may be forked from the fork server instead.
    module: str | None = None
    module_args: tuple[str, ...] = ()


def node_server(binary: str, *args: str, env: Mapping[str, str] | None = None) -> Launch:
    """An npm server's launcher script from the project's own node_modules."""
    return Launch(str(NODE_BIN / binary), tuple(args), dict(env or {}))


def python_module(module: str, *args: str, env: Mapping[str, str] | None = None) -> Launch:
    """A Python server run with this interpreter, able to import the project's packages."""
    base = {"PYTHONPATH": str(REPO_ROOT)}
    env = base | dict(env or {})
    return Launch(sys.executable, ("-m", module, *args), env, REPO_ROOT, module, tuple(args))


def python_script(script: str, *args: str, env: Mapping[str, str] | None = None) -> Launch:
    """A console script installed beside this interpreter, else its module via `-m`."""
    installed = Path(sys.executable).parent / script
    module = script.replace("-", "_")
    if not installed.exists():
        return python_module(module, *args, env=env)
    fork_as = module if _has_main(module) else None
    return Launch(str(installed), tuple(args), dict(env or {}), None, fork_as, tuple(args))


def _has_main(package: str) -> bool:
    """Whether `python -m package` runs (found without importing the package here)."""
    spec = importlib.util.find_spec(package)
    places = spec.submodule_search_locations if spec is not None else None
    return any((Path(place) / "__main__.py").is_file() for place in places or ())


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
    as_configured = config.command is not None or config.args is not None
    if default.module is not None and not as_configured and _forking(environ):
        return ForkedServerHandle(name, default.module, default.module_args, env, default.cwd)
    return StdioServerHandle(name, command, args, env, default.cwd)


def _forking(environ: Mapping[str, str]) -> bool:
    """Fork servers unless switched off or the platform lacks fork or pidfds (not Linux)."""
    usable = hasattr(os, "fork") and hasattr(os, "pidfd_open")
    return usable and environ.get(FORK_SWITCH, "1") != "0"


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
