#!/usr/bin/env bash
# The test command of the README: lint, types of the core, then the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/taskbot ] && [ -d integrations/node/node_modules ] || ./scripts/setup.sh
.venv/bin/ruff check .
.venv/bin/ruff format --check .
.venv/bin/mypy core integrations bot
exec .venv/bin/python -m pytest "$@"
