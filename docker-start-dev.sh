#!/usr/bin/env bash
# Start, watch or stop the CLPM development stack: docker-compose.yml + docker-compose.dev.yml
# (live reload of the Python services, LOG_LEVEL=debug, pgAdmin :5050, Chronograf :8888,
# Vite dev server :5173). Same options as docker-start.sh; see --help.
set -euo pipefail
exec bash "$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/docker-start.sh" --dev "$@"
