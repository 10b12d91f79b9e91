#!/usr/bin/env bash
# make test-secure: the secured suite (TLS, SCRAM, per-service principals, ACLs from the catalog)
# on the secured Apache Kafka broker of deployments/kafka/kafka-secure.sh, started here (and
# stopped again) unless it already runs. Without java, mvn or openssl it says SKIPPED and why.
set -uo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
cd "$root"
GO="${GO:-go}"
for tool in java mvn openssl; do
  if ! command -v "$tool" >/dev/null 2>&1; then
    echo "test-secure: SKIPPED: the secured broker needs $tool, not found here"
    exit 0
  fi
done
kdir="$(mkdir -p "${KAFKA_DATA_DIR:-var/broker-secure}" && cd "${KAFKA_DATA_DIR:-var/broker-secure}" && pwd)"
started=0
if ! bash deployments/kafka/kafka-secure.sh status >/dev/null 2>&1; then
  bash deployments/kafka/kafka-secure.sh start || exit 1
  started=1
fi
cleanup() { [ "$started" = 1 ] && bash deployments/kafka/kafka-secure.sh stop; }
trap cleanup EXIT

export CHOREO_SECURE_ENV="$kdir/admin.env" CHOREO_SECURE_MTLS_ENV="$kdir/admin-mtls.env"
echo "test-secure: CHOREO_SECURE_ENV=$CHOREO_SECURE_ENV"
"$GO" test -count=1 -timeout 10m -run 'Secured' -v ./services/stack/ ./cmd/choreo/internal/cli/
