#!/usr/bin/env bash
# compose.sh ARGS...: docker compose ARGS on the repository's docker-compose.yml, with whichever
# Compose this machine has: `docker compose` (v2), else docker-compose 1.29 (Debian's, which
# talks to Podman's Docker-compatible API at DOCKER_HOST). The project is COMPOSE_PROJECT_NAME,
# default choreo. `up --wait` works with both.
#
# With docker-compose 1.29:
#   - it predates the top-level `name:` of the Compose Specification and refuses the file with
#     it: it gets the file without that line, and the project name with -p;
#   - it has no `up --wait`: this script waits until every container of the project is running
#     and, where it has a health check, healthy (timeout COMPOSE_WAIT_TIMEOUT, default 300 s);
#   - under Podman without systemd nothing runs the health checks on a timer (Podman's timers
#     are systemd units), so `depends_on: condition: service_healthy` would wait forever: while
#     `up` runs, this script runs the checks of the project's containers itself
#     (`podman healthcheck run`), and stops doing so, by pid, when `up` returns.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
project="${COMPOSE_PROJECT_NAME:-choreo}"
# docker-compose 1.29 reading the file from stdin resolves relative paths (the PostgreSQL init
# script's bind mount) against the working directory, whatever --project-directory says.
cd "$root"

if docker compose version >/dev/null 2>&1; then
  exec docker compose -p "$project" -f "$root/docker-compose.yml" --project-directory "$root" "$@"
fi
command -v docker-compose >/dev/null 2>&1 || {
  echo "compose.sh: neither docker compose nor docker-compose is installed" >&2
  exit 1
}

wait=0 up=0 args=()
for a in "$@"; do
  case "$a" in
    --wait) wait=1 ;;
    up) up=1 args+=("$a") ;;
    *) args+=("$a") ;;
  esac
done

# containers: the project's containers, one "name status health" line each.
containers() {
  local ids
  ids=$(podman ps -aq --filter "label=com.docker.compose.project=$project" 2>/dev/null) || return 0
  [ -n "$ids" ] || return 0
  # shellcheck disable=SC2086 # one id per word
  podman inspect --format '{{.Name}} {{.State.Status}} {{if .State.Health.Status}}{{.State.Health.Status}}{{else}}none{{end}}' $ids 2>/dev/null || true
}

# run_checks: one round of health checks of the project's containers that have one and are not
# healthy yet. Prints how many containers are not ready.
run_checks() {
  local name st health pending=0
  while read -r name st health; do
    [ -n "$name" ] || continue
    if [ "$st" != running ]; then
      pending=$((pending + 1))
      continue
    fi
    case "$health" in
      none | healthy) ;;
      *)
        podman healthcheck run "$name" >/dev/null 2>&1 || pending=$((pending + 1))
        ;;
    esac
  done < <(containers)
  echo "$pending"
}

driver=""
stop_driver() {
  if [ -n "$driver" ]; then
    kill "$driver" 2>/dev/null || true
    wait "$driver" 2>/dev/null || true
    driver=""
  fi
}
trap stop_driver EXIT
if [ "$up" = 1 ] && command -v podman >/dev/null 2>&1; then
  (while true; do run_checks >/dev/null; sleep 2; done) &
  driver=$!
fi

rc=0
sed '/^name:/d' "$root/docker-compose.yml" |
  docker-compose -p "$project" -f - --project-directory "$root" "${args[@]}" || rc=$?
if [ "$rc" != 0 ] || [ "$wait" = 0 ]; then
  exit "$rc"
fi

command -v podman >/dev/null 2>&1 || {
  echo "compose.sh: --wait with docker-compose 1.x needs podman to inspect the containers" >&2
  exit 1
}
deadline=$((SECONDS + ${COMPOSE_WAIT_TIMEOUT:-300}))
while [ "$SECONDS" -lt "$deadline" ]; do
  [ "$(run_checks)" = 0 ] && exit 0
  sleep 2
done
echo "compose.sh: the project $project is not up within ${COMPOSE_WAIT_TIMEOUT:-300} s:" >&2
containers >&2
exit 1
