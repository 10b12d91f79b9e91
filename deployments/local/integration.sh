#!/usr/bin/env bash
# make test-integration: the whole suite against a real Apache Kafka broker and a PostgreSQL
# server, each started here (and stopped again) unless KAFKA_BROKERS / TEST_DATABASE_URL name
# one already. Where a server cannot be had, that part says SKIPPED and why.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
GO="${GO:-go}"
started=()
cleanup() {
  for s in "${started[@]}"; do
    case "$s" in
      kafka) bash deployments/kafka/kafka.sh stop ;;
      postgres) bash deployments/postgres/postgres.sh stop ;;
    esac
  done
}
trap cleanup EXIT

if [ -z "${KAFKA_BROKERS:-}" ]; then
  if command -v java >/dev/null 2>&1 && command -v mvn >/dev/null 2>&1; then
    if ! bash deployments/kafka/kafka.sh status >/dev/null 2>&1; then
      bash deployments/kafka/kafka.sh start || exit 1
      started+=(kafka)
    fi
    export KAFKA_BROKERS=127.0.0.1:9092
  else
    echo "test-integration: real Kafka SKIPPED: it needs java (17+) and mvn, not found here"
  fi
fi
if [ -z "${TEST_DATABASE_URL:-}" ]; then
  if ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
    bash deployments/postgres/postgres.sh start || exit 1
    started+=(postgres)
    TEST_DATABASE_URL="$(bash deployments/postgres/postgres.sh url)"
    export TEST_DATABASE_URL
  else
    echo "test-integration: PostgreSQL SKIPPED: no server installed (apt-get install postgresql)"
  fi
fi
if [ -z "${KAFKA_BROKERS:-}" ] && [ -z "${TEST_DATABASE_URL:-}" ]; then
  echo "test-integration: SKIPPED: neither a real broker nor PostgreSQL can be had here"
  exit 0
fi
echo "test-integration: KAFKA_BROKERS=${KAFKA_BROKERS:-<embedded kfake>} TEST_DATABASE_URL=${TEST_DATABASE_URL:+<local PostgreSQL>}"
# With the race detector: this is the only run where PostgreSQL code paths (pgx, the store
# conformance suite, the stack on PostgreSQL) execute, so it is where a race in them shows.
"$GO" test -race -count=1 -timeout 30m ./...
