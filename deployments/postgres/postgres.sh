#!/usr/bin/env bash
# A PostgreSQL server for choreo's tests and `make up`, from the Debian packages, on loopback.
#   postgres.sh start   initialise (once) and start; prints nothing else on success but one line
#   postgres.sh stop    stop it
#   postgres.sh url     print the DATABASE_URL of the choreo database
#   postgres.sh db NAME create database NAME (owned by choreo) if missing, print its DATABASE_URL
#   postgres.sh dropdb NAME  drop database NAME if it exists (its connections are ended)
# Settings: PG_PORT (default 25432: out of the way of a system server on 5432, and below Linux's
# ephemeral range 32768-60999, where a busy machine's outgoing connection can hold a port), PG_DATA (default
# /tmp/choreo-postgres-<uid>: the server runs as the postgres user, which must reach it), PG_FSYNC
# (default off: a server for tests and development, which a power cut may corrupt; on, as in
# production, to measure what durable commits cost).
set -euo pipefail

PG_PORT="${PG_PORT:-25432}"
PG_DATA="${PG_DATA:-/tmp/choreo-postgres-$(id -u)}"
PG_FSYNC="${PG_FSYNC:-off}"
PG_USER=choreo
PG_DB=choreo

bindir() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/pg_ctl" ] && { echo "$d"; return; }
  done
  echo "postgres.sh: no PostgreSQL server found (apt-get install postgresql)" >&2
  exit 1
}

# as_pg runs a command as the postgres user when we are root (the server refuses root).
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

url() { echo "postgres://$PG_USER:$PG_USER@127.0.0.1:$PG_PORT/${1:-$PG_DB}?sslmode=disable"; }

db() {
  local name=$1 bin; bin="$(bindir)"
  local psql=("$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qtA)
  if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$name'")" != 1 ]; then
    "${psql[@]}" -c "CREATE DATABASE \"$name\" OWNER $PG_USER" >/dev/null
  fi
  url "$name"
}

dropdb() {
  local name=$1 bin; bin="$(bindir)"
  "$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qtA \
    -c "DROP DATABASE IF EXISTS \"$name\" WITH (FORCE)" >/dev/null
}

start() {
  local bin; bin="$(bindir)"
  if [ ! -f "$PG_DATA/PG_VERSION" ]; then
    mkdir -p "$PG_DATA"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$PG_DATA"
    chmod 700 "$PG_DATA"
    as_pg "$bin/initdb" -D "$PG_DATA" -U postgres -A trust -E UTF8 --no-instructions >/dev/null
  fi
  if as_pg "$bin/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
    echo "postgres already running: $(url)"
    return
  fi
  as_pg "$bin/pg_ctl" -D "$PG_DATA" -l "$PG_DATA/server.log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -c unix_socket_directories=$PG_DATA -c fsync=$PG_FSYNC -c max_connections=200" >/dev/null
  local psql=("$bin/psql" -h 127.0.0.1 -p "$PG_PORT" -U postgres -v ON_ERROR_STOP=1 -qtA)
  if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_roles WHERE rolname = '$PG_USER'")" != 1 ]; then
    "${psql[@]}" -c "CREATE ROLE $PG_USER LOGIN CREATEDB PASSWORD '$PG_USER'"
  fi
  if [ "$("${psql[@]}" -c "SELECT 1 FROM pg_database WHERE datname = '$PG_DB'")" != 1 ]; then
    "${psql[@]}" -c "CREATE DATABASE $PG_DB OWNER $PG_USER"
  fi
  echo "postgres listening: $(url)"
}

stop() {
  local bin; bin="$(bindir)"
  if [ -f "$PG_DATA/PG_VERSION" ] && as_pg "$bin/pg_ctl" -D "$PG_DATA" status >/dev/null 2>&1; then
    as_pg "$bin/pg_ctl" -D "$PG_DATA" -m fast -w stop >/dev/null
    echo "postgres stopped"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  url) url ;;
  db) [ -n "${2:-}" ] || { echo "usage: $0 db NAME" >&2; exit 2; }; db "$2" ;;
  dropdb) [ -n "${2:-}" ] || { echo "usage: $0 dropdb NAME" >&2; exit 2; }; dropdb "$2" ;;
  *) echo "usage: $0 start|stop|url|db NAME|dropdb NAME" >&2; exit 2 ;;
esac
