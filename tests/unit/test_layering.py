"""Dependencies point one way: core and integrations never load aiogram."""

from __future__ import annotations

import subprocess
import sys

import pytest


@pytest.mark.parametrize("package", ["core", "core.orchestrator", "integrations"])
def test_importing_the_package_in_a_fresh_interpreter_loads_no_aiogram(package: str) -> None:
    probe = f"import sys, {package}; print(any(m.split('.')[0] == 'aiogram' for m in sys.modules))"
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "False"


# The fork server's imports are every forked server's imports too.
@pytest.mark.parametrize("module", ["deltatask", "_forkserver"])
def test_a_shipped_server_runs_without_loading_core_or_the_client_layer(module: str) -> None:
    probe = (
        f"import sys, integrations.servers.{module}; "
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'core', 'bot', 'aiogram'}), "
        "'integrations.mcp' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert out.stdout.strip() == "[] False"
