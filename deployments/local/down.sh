#!/usr/bin/env bash
# make down: stop exactly what make up started (by pid file), or docker compose down.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"

case "$(cat var/run/mode 2>/dev/null)" in
  docker)
    bash deployments/containers/compose.sh down
    rm -f var/run/mode
    exit 0
    ;;
  podman)
    if ! bash deployments/containers/containers.sh running; then
      bash deployments/containers/containers.sh start
      trap 'bash deployments/containers/containers.sh stop' EXIT
    fi
    eval "$(bash deployments/containers/containers.sh env)"
    bash deployments/containers/compose.sh down
    rm -f var/run/mode
    exit 0
    ;;
esac
for name in notification-service user-service account-service schema-registry; do
  pidf="var/run/$name.pid"
  [ -f "$pidf" ] || continue
  pid=$(cat "$pidf")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid"
    for _ in $(seq 1 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      echo "make down: $name (pid $pid) did not stop in 15 s; killing it" >&2
      kill -KILL "$pid" 2>/dev/null || true
    fi
    echo "  $name stopped"
  fi
  rm -f "$pidf"
done
if [ "$(cat var/run/mode 2>/dev/null)" = secure ]; then
  bash deployments/kafka/kafka-secure.sh stop
else
  bash deployments/kafka/kafka.sh stop
fi
if [ -f var/run/postgres ]; then
  bash deployments/postgres/postgres.sh stop
  rm -f var/run/postgres
fi
rm -f var/run/mode
