#!/usr/bin/env bash
# Start, watch or stop the CLPM suite in Docker (Compose v2).
#   ./docker-start.sh            docker-compose.yml                              (base stack)
#   ./docker-start.sh --prod     docker-compose.yml + docker-compose.prod.yml    (production)
#   ./docker-start-dev.sh        docker-compose.yml + docker-compose.dev.yml     (development)
# Run with --help for the options.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
WAIT_TIMEOUT_S="${CLPM_WAIT_TIMEOUT_S:-600}"

mode="base"
action="up"
build=0
remove_volumes=0
log_services=()

program() {
  if [[ "$mode" == "dev" ]]; then echo "docker-start-dev.sh"; else echo "docker-start.sh"; fi
}

usage() {
  local program
  program="$(program)"
  cat <<EOF
Usage: ./$program [OPTION]...

Start the CLPM suite with Docker Compose, wait until it is healthy and print its URLs.
Creates .env from env.docker on first use (edit .env for local settings and secrets).

Options:
EOF
  if [[ "$mode" != "dev" ]]; then
    cat <<EOF
  --prod            add docker-compose.prod.yml: resource limits, 3 api-gateway replicas,
                    no default passwords (POSTGRES_PASSWORD, INFLUXDB_PASSWORD, INFLUXDB_TOKEN,
                    REDIS_PASSWORD, KEYCLOAK_ADMIN_PASSWORD, KEYCLOAK_PUBLIC_URL must be set
                    in the environment or in .env)
EOF
  fi
  cat <<EOF
  --build           rebuild the CLPM images before starting
  --down            stop and remove the containers (data volumes are kept)
  --volumes         with --down: also delete the data volumes (PostgreSQL, InfluxDB, ...)
  --logs [SERVICE]  follow the logs (of all services, or of the ones named)
  --status          show the containers and their health
  -h, --help        show this help

Environment: CLPM_WAIT_TIMEOUT_S (default 600) bounds the wait for health.
EOF
}

die() {
  echo "error: $*" >&2
  exit 1
}

parse_arguments() {
  while (($#)); do
    case "$1" in
      --dev | --prod)
        if [[ "$mode" != "base" && "$mode" != "${1#--}" ]]; then
          echo "error: the development and production stacks do not combine" >&2
          exit 2
        fi
        mode="${1#--}"
        ;;
      --build) build=1 ;;
      --down) action="down" ;;
      --volumes) remove_volumes=1 ;;
      --logs)
        action="logs"
        while (($# > 1)) && [[ "$2" != -* ]]; do
          log_services+=("$2")
          shift
        done
        ;;
      --status) action="status" ;;
      -h | --help) action="help" ;;
      *)
        usage >&2
        echo "error: unknown option: $1" >&2
        exit 2
        ;;
    esac
    shift
  done
  if ((remove_volumes)) && [[ "$action" != "down" ]]; then
    echo "error: --volumes only goes with --down" >&2
    exit 2
  fi
}

compose=()
find_docker() {
  command -v docker >/dev/null 2>&1 \
    || die "docker is not installed (https://docs.docker.com/engine/install/)"
  docker info >/dev/null 2>&1 \
    || die "the Docker daemon is not reachable: start Docker, or add your user to the docker group"
  if docker compose version >/dev/null 2>&1; then
    compose=(docker compose)
  elif command -v docker-compose >/dev/null 2>&1 && docker-compose version 2>/dev/null | grep -q "v2\."; then
    compose=(docker-compose)
  else
    die "Docker Compose v2 is missing: install the docker-compose-plugin package"
  fi
  compose+=(--project-directory "$ROOT" -f "$ROOT/docker-compose.yml")
  case "$mode" in
    dev) compose+=(-f "$ROOT/docker-compose.dev.yml") ;;
    prod) compose+=(-f "$ROOT/docker-compose.prod.yml") ;;
  esac
}

ensure_env_file() {
  if [[ ! -f "$ROOT/.env" ]]; then
    cp "$ROOT/env.docker" "$ROOT/.env"
    echo "==> created .env from env.docker (edit it for local settings and secrets)"
  fi
}

# Services whose health the start waits for; workers report their state but do not block.
wait_services() {
  local services=(postgres redis influxdb keycloak diagnostics api-gateway frontend)
  [[ "$mode" == "dev" ]] && services+=(pgadmin chronograf frontend-dev)
  printf '%s\n' "${services[@]}"
}

# Prints "<service> <state> <health> <exit code>" per container.
container_states() {
  "${compose[@]}" ps --all --format '{{.Service}} {{.State}} {{if .Health}}{{.Health}}{{else}}-{{end}} {{.ExitCode}}'
}

wait_for_health() {
  local deadline=$((SECONDS + WAIT_TIMEOUT_S))
  local -a services
  mapfile -t services < <(wait_services)
  echo "==> waiting for health (up to ${WAIT_TIMEOUT_S} s): ${services[*]}"
  while :; do
    local states pending=() service line state health code seen
    states="$(container_states)"
    while read -r service state health code; do
      if [[ "$service" == "migrate" && "$state" == "exited" && "$code" != "0" ]]; then
        "${compose[@]}" logs --tail=40 migrate >&2 || true
        die "the database migration failed (exit $code); see the log above"
      fi
    done <<<"$states"
    for service in "${services[@]}"; do
      seen=0
      while read -r line state health code; do
        [[ "$line" == "$service" ]] || continue
        seen=1
        if [[ "$state" == "exited" || "$state" == "dead" || "$health" == "unhealthy" ]]; then
          "${compose[@]}" logs --tail=40 "$service" >&2 || true
          die "$service is $state/$health; see the log above (./$(program) --logs $service)"
        fi
        [[ "$health" == "healthy" ]] || pending+=("$service")
      done <<<"$states"
      ((seen)) || pending+=("$service")
    done
    if ((${#pending[@]} == 0)); then
      return 0
    fi
    if ((SECONDS > deadline)); then
      "${compose[@]}" ps --all >&2 || true
      die "not healthy after ${WAIT_TIMEOUT_S} s: ${pending[*]}"
    fi
    sleep 3
  done
}

print_urls() {
  local keycloak="${KEYCLOAK_PUBLIC_URL:-http://localhost:8081}"
  echo
  echo "CLPM is running ($mode stack)."
  echo "  App              http://localhost/"
  if [[ "$mode" == "dev" ]]; then
    echo "  App (Vite, HMR)  http://localhost:5173/"
  fi
  if [[ "$mode" == "prod" ]]; then
    echo "  API              http://localhost/api/v1/"
    echo "  API docs         http://localhost/docs"
  else
    echo "  API              http://localhost:8080/api/v1/"
    echo "  API docs         http://localhost:8080/docs"
    echo "  Diagnostics      http://localhost:8050/health"
    echo "  InfluxDB         http://localhost:8086/"
  fi
  echo "  Keycloak         ${keycloak}/admin/  (realm clpm; demo users viewer, engineer, admin)"
  if [[ "$mode" == "dev" ]]; then
    echo "  pgAdmin          http://localhost:5050/  (admin@clpm.com / admin123)"
    echo "  Chronograf       http://localhost:8888/"
  fi
  echo
  echo "Workers (their health follows their heartbeats):"
  container_states | awk '$1 == "aggregation" || $1 == "kpi-worker" || $1 == "data-streaming" \
    { printf "  %-16s %s %s\n", $1, $2, $3 }'
  echo
  echo "Logs: ./$(program) --logs [SERVICE]    Stop: ./$(program) --down"
}

main() {
  parse_arguments "$@"
  if [[ "$action" == "help" ]]; then
    usage
    return 0
  fi
  find_docker
  case "$action" in
    down)
      if ((remove_volumes)); then
        "${compose[@]}" down --remove-orphans --volumes
      else
        "${compose[@]}" down --remove-orphans
      fi
      ;;
    logs) "${compose[@]}" logs --follow --tail=100 "${log_services[@]}" ;;
    status) "${compose[@]}" ps --all ;;
    up)
      ensure_env_file
      local up=(up --detach --remove-orphans)
      ((build)) && up+=(--build)
      echo "==> ${compose[*]} ${up[*]}"
      "${compose[@]}" "${up[@]}"
      wait_for_health
      print_urls
      ;;
  esac
}

main "$@"
