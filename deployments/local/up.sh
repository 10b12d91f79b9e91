#!/usr/bin/env bash
# make up: the full stack as separate processes. With a Docker engine: docker compose. With
# Podman (and docker-compose or docker compose): the same compose file on the images `make
# container-images` builds (refreshed first), through Podman's Docker-compatible API, which is
# stopped again afterwards (the containers do not need it). Without either: a real Kafka broker
# from Maven Central, the schema registry (choreo registry) and each service as its own OS
# process, with logs in var/log and pid files in var/run.
# CHOREO_UP_MODE=local forces the local processes even where a container engine answers.
# CHOREO_UP_SECURE=1 (make up-secure) runs them on the secured broker (kafka-secure.sh: SASL_SSL
# with SCRAM-SHA-512, ACLs enforced), after `choreo acls apply` has created the topics and one
# SCRAM user per service with the catalog's ACLs; each service logs in as its own user.
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
mkdir -p var/run var/log
secure="${CHOREO_UP_SECURE:-0}"
# Listen addresses; the defaults are the ones the README uses.
reg_addr="${CHOREO_REGISTRY_ADDR:-127.0.0.1:8081}"
account_addr="${CHOREO_ACCOUNT_ADDR:-127.0.0.1:8080}"
user_addr="${CHOREO_USER_ADDR:-127.0.0.1:8082}"
notification_addr="${CHOREO_NOTIFICATION_ADDR:-127.0.0.1:8083}"

if [ "$secure" != 1 ] && [ "${CHOREO_UP_MODE:-}" != local ]; then
  if command -v docker >/dev/null 2>&1 && docker info >/dev/null 2>&1; then
    echo "make up: a Docker engine answers: docker compose up (docker-compose.yml)"
    echo docker > var/run/mode
    exec bash deployments/containers/compose.sh up -d --wait --build
  fi
  if command -v podman >/dev/null 2>&1 && { command -v docker-compose >/dev/null 2>&1 || docker compose version >/dev/null 2>&1; }; then
    echo "make up: Podman: docker-compose.yml on the local images (make container-images)"
    bash deployments/containers/containers.sh images
    echo podman > var/run/mode
    if ! bash deployments/containers/containers.sh running; then
      bash deployments/containers/containers.sh start
      trap 'bash deployments/containers/containers.sh stop' EXIT
    fi
    eval "$(bash deployments/containers/containers.sh env)"
    bash deployments/containers/compose.sh up -d --wait
    echo "make up: done; stop with make down"
    exit 0
  fi
fi
echo "make up: no Docker engine: the stack as local processes (logs var/log, pids var/run)"
echo local > var/run/mode

go build -o bin/ ./cmd/choreo ./services/account ./services/user ./services/notification
# principal NAME: the environment that logs a service in as its own user (none without security).
principal() { :; }
if [ "$secure" = 1 ]; then
  echo secure > var/run/mode
  bash deployments/kafka/kafka-secure.sh start
  kdir="$(cd "${KAFKA_DATA_DIR:-var/broker-secure}" && pwd)"
  (
    # shellcheck disable=SC1091 # written by kafka.sh
    source "$kdir/admin.env"
    bin/choreo acls apply -passwords-dir "$kdir/users" | sed 's/^/  acls apply: /'
  )
  export KAFKA_BROKERS="127.0.0.1:${KAFKA_SASL_SSL_PORT:-9094}" KAFKA_TLS=true KAFKA_TLS_CA_FILE="$kdir/tls/ca.pem" KAFKA_SASL_MECHANISM=SCRAM-SHA-512
  principal() { echo "KAFKA_SASL_USERNAME=$1" "KAFKA_SASL_PASSWORD_FILE=$kdir/users/$1.password"; }
else
  bash deployments/kafka/kafka.sh start
  export KAFKA_BROKERS=127.0.0.1:9092
fi

# start NAME CMD...: run CMD in the background unless NAME already runs.
start() {
  local name=$1 pidf="var/run/$1.pid"
  shift
  if [ -f "$pidf" ] && kill -0 "$(cat "$pidf")" 2>/dev/null; then
    echo "  $name already running (pid $(cat "$pidf"))"
    return
  fi
  nohup "$@" >"var/log/$name.log" 2>&1 &
  echo $! >"$pidf"
}

# wait_http NAME URL: wait until URL answers, or show the log and fail.
wait_http() {
  local name=$1 url=$2
  for _ in $(seq 1 150); do
    if curl -fsS -o /dev/null "$url" 2>/dev/null; then
      echo "  $name ready: ${url%/*}"
      return
    fi
    if ! kill -0 "$(cat "var/run/$name.pid")" 2>/dev/null; then break; fi
    sleep 0.2
  done
  echo "make up: $name did not start; last lines of var/log/$name.log:" >&2
  tail -n 20 "var/log/$name.log" >&2
  exit 1
}

# PostgreSQL, one database per service, when the server is installed; SQLite files otherwise.
declare -A dburl=()
if ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  bash deployments/postgres/postgres.sh start
  echo postgres > var/run/postgres
  for svc in account user notification; do
    dburl[$svc]=$(bash deployments/postgres/postgres.sh db "choreo_$svc")
  done
else
  echo "  PostgreSQL is not installed (apt-get install postgresql): the services keep SQLite files in var/local"
fi

start schema-registry bin/choreo registry -addr "$reg_addr" -data-dir var/local
wait_http schema-registry "http://$reg_addr/subjects"

export SCHEMA_REGISTRY_URL="http://$reg_addr" DATA_DIR=var/local
# shellcheck disable=SC2046 # principal prints NAME=value words for env
DATABASE_URL=${dburl[account]:-} HTTP_ADDR=$account_addr start account-service env $(principal account-service) bin/account
wait_http account-service "http://$account_addr/healthz"
# shellcheck disable=SC2046
DATABASE_URL=${dburl[user]:-} HTTP_ADDR=$user_addr start user-service env $(principal user-service) bin/user
# shellcheck disable=SC2046
DATABASE_URL=${dburl[notification]:-} HTTP_ADDR=$notification_addr start notification-service env $(principal notification-service) bin/notification
wait_http user-service "http://$user_addr/healthz"
wait_http notification-service "http://$notification_addr/healthz"
echo "make up: done; stop with make down"
