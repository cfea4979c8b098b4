#!/usr/bin/env bash
# README command (1): the whole suite on one machine with no servers (the embedded default):
# SQLite for the relational store, an embedded SQLite time-series store, an in-process cache and
# a local token issuer bound to loopback. Ctrl-C stops every process cleanly.
#
# Your own data first: deploy/local/run.sh --import DIR --tag-map FILE [importer options...]
# imports every CSV/Parquet export of DIR (python -m clpm_shared.ingest; options such as
# --timezone Europe/Berlin are passed on), computes the aggregates and KPI history of the
# imported range, then starts the suite as usual.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
IMPORT_DIR=""
IMPORT_ARGS=()
while [[ $# -gt 0 ]]; do
  case "$1" in
    --import) IMPORT_DIR="$(realpath "$2")"; shift 2 ;;
    --tag-map) IMPORT_ARGS+=(--tag-map "$(realpath "$2")"); shift 2 ;;
    *) IMPORT_ARGS+=("$1"); shift ;;
  esac
done
if [[ -n "$IMPORT_DIR" && " ${IMPORT_ARGS[*]} " != *" --tag-map "* ]]; then
  echo "--import needs --tag-map FILE" >&2
  exit 2
fi
cd "$ROOT"

bash deploy/bootstrap.sh

DATA_DIR="${CLPM_DATA_DIR:-$ROOT/.clpm}"
mkdir -p "$DATA_DIR/logs"
export CLPM_DATA_DIR="$DATA_DIR"
export DATABASE_URL="${DATABASE_URL:-sqlite+aiosqlite:///$DATA_DIR/clpm.db}"
export TIMESERIES_BACKEND="${TIMESERIES_BACKEND:-embedded}"
export EMBEDDED_TSDB_PATH="${EMBEDDED_TSDB_PATH:-$DATA_DIR/timeseries.db}"
export CACHE_BACKEND="${CACHE_BACKEND:-memory}"
export AUTH_MODE="${AUTH_MODE:-local}"
export LOCAL_ISSUER_KEY_PATH="${LOCAL_ISSUER_KEY_PATH:-$DATA_DIR/local-issuer-key.pem}"
export API_HOST="${API_HOST:-127.0.0.1}"
export API_PORT="${API_PORT:-8080}"
export DIAG_HOST="${DIAG_HOST:-127.0.0.1}"
export DIAG_PORT="${DIAG_PORT:-8050}"
export DIAG_SERVICE_URL="${DIAG_SERVICE_URL:-http://127.0.0.1:$DIAG_PORT}"
export OIDC_ISSUER="${OIDC_ISSUER:-http://127.0.0.1:$API_PORT/realms/clpm}"
# The simulator logs to the console only: start() below writes it to logs/data-streaming.log
# (a log file of its own besides would hold every line twice).
export STREAM_LOG_FILE="${STREAM_LOG_FILE-}"
# Its state is kept across restarts: trends continue instead of starting again at their base.
export STREAM_STATE_FILE="${STREAM_STATE_FILE:-$DATA_DIR/simulator-state.pickle}"
export NODE_ENV="${NODE_ENV:-development}"
export FRONTEND_DIST="${FRONTEND_DIST:-$ROOT/frontend/dist}"

# The web front, served by the gateway: (re)built when missing or older than its sources.
if [[ ! -f frontend/dist/index.html ]] || [[ -n "$(find frontend/src frontend/index.html frontend/package-lock.json -newer frontend/dist/index.html 2>/dev/null | head -1)" ]]; then
  echo "==> building the web front (frontend/dist)"
  if [[ ! -f frontend/node_modules/.package-lock.json || frontend/package-lock.json -nt frontend/node_modules/.package-lock.json ]]; then
    npm ci --prefix frontend --no-audit --no-fund --loglevel=error >/dev/null
  fi
  npm run build --prefix frontend >/dev/null
fi

echo "==> migrating $DATABASE_URL"
.venv/bin/alembic -c migrations/alembic.ini upgrade head 2>&1 | grep -v "^INFO  \[alembic.runtime.migration\] \(Context\|Will\)" || true

if [[ ! -f "$DATA_DIR/demo-plant.imported" ]]; then
  # First run only: names, units/areas and loop settings of the simulated demo plant, so the
  # fleet view has roll-ups; later edits made in the UI are kept across restarts.
  .venv/bin/python -m clpm_shared.loop_catalogue deploy/local/demo-plant.csv && touch "$DATA_DIR/demo-plant.imported"
fi

if [[ -n "$IMPORT_DIR" ]]; then
  echo "==> importing $IMPORT_DIR"
  import_log="$DATA_DIR/logs/import.log"
  .venv/bin/python -m clpm_shared.ingest "$IMPORT_DIR" "${IMPORT_ARGS[@]}" | tee "$import_log"
  # aggregates and KPI history of the imported range (the commands the importer prints)
  while read -r -a words; do
    echo "==> ${words[*]}"
    ".venv/bin/${words[0]}" "${words[@]:1}"
  done < <(grep '^next: python -m ' "$import_log" | cut -c7-)
fi

pids=()
stop_all() {
  trap - INT TERM
  echo
  echo "==> stopping ${#pids[@]} processes"
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  echo "==> stopped"
  exit 0
}
trap stop_all INT TERM

start() { # name, command...
  local name="$1"; shift
  "$@" >>"$DATA_DIR/logs/$name.log" 2>&1 &
  pids+=($!)
  echo "    started $name (pid $!, log $DATA_DIR/logs/$name.log)"
}

echo "==> starting services"
# Each line starts one service of the suite on the embedded default.
# The simulator writes 2 h of history on its first start (only what is missing later), then streams.
STREAM_LOG="$DATA_DIR/logs/data-streaming.log"
STREAM_LOG_FROM=$(($(stat -c %s "$STREAM_LOG" 2>/dev/null || echo 0) + 1))
start data-streaming .venv/bin/python -m data_streaming_service --backfill 2
start api-gateway .venv/bin/python -m clpm_api_gateway
start diagnostics .venv/bin/python -m clpm_diagnostics
# The kpi-worker computes the KPIs of the simulator's history once it is written, then runs on schedule.
start kpi-worker bash -c 'until tail -c "+$0" "$1" 2>/dev/null | grep -qE "\"backfill (written|skipped|interrupted)"; do sleep 1; done; .venv/bin/python -m clpm_kpi_worker run-once --no-progress --start "$(date -u -d "-2 hours" +%FT%TZ)" --end "$(date -u +%FT%TZ)"; exec .venv/bin/python -m clpm_kpi_worker run' "$STREAM_LOG_FROM" "$STREAM_LOG"
# The aggregation catches up from the oldest sample; it starts once this run's simulator history
# is written, so that its catch-up never passes minutes whose history is still being written.
start aggregation bash -c 'until tail -c "+$0" "$1" 2>/dev/null | grep -qE "\"backfill (written|skipped|interrupted)"; do sleep 1; done; exec .venv/bin/python -m clpm_aggregation run' "$STREAM_LOG_FROM" "$STREAM_LOG"

deadline=$((SECONDS + 60))
until curl -fsS "http://$API_HOST:$API_PORT/health" >/dev/null 2>&1; do
  if ((SECONDS > deadline)); then echo "api-gateway did not answer /health; see $DATA_DIR/logs"; stop_all; fi
  for pid in "${pids[@]}"; do
    kill -0 "$pid" 2>/dev/null || { echo "a service exited; see $DATA_DIR/logs"; tail -5 "$DATA_DIR"/logs/*.log; stop_all; }
  done
  sleep 0.3
done

echo
echo "CLPM is running at http://$API_HOST:$API_PORT/  (API docs: http://$API_HOST:$API_PORT/docs)"
echo "Sign in as viewer/viewer, engineer/engineer or admin/admin."
echo "Health: $(curl -fsS "http://$API_HOST:$API_PORT/health")"
echo "Press Ctrl-C to stop."
wait -n "${pids[@]}" || true
echo "a service exited; see $DATA_DIR/logs"
stop_all
