#!/usr/bin/env bash
# README command (2): install what the tests need, then ruff, mypy and the whole pytest suite
# (unit + integration against real PostgreSQL, Redis, influxd and an OIDC provider + e2e).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

APT_PACKAGES=(postgresql redis-server influxdb chromium nginx-light shellcheck poppler-utils)
missing=()
for package in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed" || missing+=("$package")
done
if ((${#missing[@]})); then
  echo "==> apt-get install ${missing[*]}"
  SUDO=""; [[ $(id -u) -ne 0 ]] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

bash deploy/bootstrap.sh

echo "==> npm ci (test OIDC provider)"
npm ci --prefix tests/harness/oidc --no-audit --no-fund --loglevel=error >/dev/null

if [[ -f frontend/package.json ]]; then
  echo "==> npm ci (frontend)"
  npm ci --prefix frontend --no-audit --no-fund --loglevel=error >/dev/null
fi

echo "==> ruff"
.venv/bin/ruff check .
.venv/bin/ruff format --check .
echo "==> mypy (strict)"
.venv/bin/mypy

if [[ -f frontend/package.json ]] && grep -q '"test"' frontend/package.json; then
  echo "==> frontend tests"
  npm test --prefix frontend
fi

echo "==> pytest"
.venv/bin/pytest "$@"
