#!/usr/bin/env bash
# Shared set-up of both README commands: uv, the locked virtualenv (.venv) with every workspace
# member installed in editable mode. Safe to run again; fast when nothing changed.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
UV_VERSION="0.13.9"

if ! command -v uv >/dev/null 2>&1 || [[ "$(uv --version | cut -d' ' -f2)" != "$UV_VERSION" ]]; then
  echo "==> installing uv $UV_VERSION"
  python3 -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi
echo "==> syncing .venv from uv.lock"
(cd "$ROOT" && uv sync --frozen --all-packages --quiet)
