#!/usr/bin/env bash
# The demo of the README: installs on first use, then runs `taskbot demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/taskbot ] && [ -d integrations/node/node_modules ] || ./scripts/setup.sh
exec .venv/bin/taskbot demo "$@"
