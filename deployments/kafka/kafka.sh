#!/usr/bin/env bash
# Single-node Apache Kafka (KRaft, combined broker+controller) on loopback,
# without Docker: the broker's jars come from Maven Central through pom.xml.
#
# usage: kafka.sh start|stop|status|wait|restart|lib
#   lib prints the directory holding the broker's jars, resolving them first if needed
#   (deployments/containers builds its Kafka image from the same jars).
#
# env:
#   KAFKA_PORT             PLAINTEXT listener port      (default 9092)
#   KAFKA_CONTROLLER_PORT  CONTROLLER listener port     (default 9093)
#   KAFKA_DATA_DIR         data, log, pid, cluster id   (default <repo>/var/broker; var/kafka is the embedded broker of choreo dev)
#   KAFKA_WAIT_TIMEOUT     seconds to wait for the broker to answer (default 90)
#   KAFKA_HEAP_OPTS        JVM heap flags               (default -Xms256m -Xmx1g)
#   KAFKA_JVM_OPTS         extra JVM flags              (default empty)
#   JAVA_HOME / JAVA       java to use                  (default java on PATH)
#   MVN                    maven to use                 (default mvn)
#
# Secured broker (KAFKA_SECURE=1, or kafka-secure.sh): no plaintext listener; clients use
# SASL_SSL with SCRAM-SHA-512, or mutual TLS; the controller listener and the broker's own
# connections are authenticated too; the StandardAuthorizer denies what no ACL allows. The
# super users are User:admin (SCRAM, password generated at format time) and User:broker (the
# broker's own certificate). TLS material comes from certs.sh, under the data dir.
#   KAFKA_SASL_SSL_PORT    SASL_SSL (SCRAM-SHA-512) listener port  (default 9094)
#   KAFKA_SSL_PORT         mutual-TLS listener port                (default 9095)
#   KAFKA_CONTROLLER_PORT  (SSL, client certificates required)     (default 9096 when secured)
#   KAFKA_DATA_DIR                                                 (default <repo>/var/broker-secure)
#   Written there: tls/ (CA, certificates), admin.password, admin.env (the client settings of
#   User:admin, to source: KAFKA_BROKERS, KAFKA_TLS*, KAFKA_SASL_*), admin-mtls.env (the same
#   user over mutual TLS: its client certificate instead of a password).
set -euo pipefail

SCRIPT_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO_ROOT="$(cd "$SCRIPT_DIR/../.." && pwd)"

KAFKA_SECURE="${KAFKA_SECURE:-0}"
if [ "$KAFKA_SECURE" = 1 ]; then
  KAFKA_SASL_SSL_PORT="${KAFKA_SASL_SSL_PORT:-9094}"
  KAFKA_SSL_PORT="${KAFKA_SSL_PORT:-9095}"
  KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9096}"
  KAFKA_DATA_DIR="${KAFKA_DATA_DIR:-$REPO_ROOT/var/broker-secure}"
  KAFKA_PORT="$KAFKA_SASL_SSL_PORT" # the port clients are pointed at
fi
KAFKA_PORT="${KAFKA_PORT:-9092}"
KAFKA_CONTROLLER_PORT="${KAFKA_CONTROLLER_PORT:-9093}"
KAFKA_DATA_DIR="${KAFKA_DATA_DIR:-$REPO_ROOT/var/broker}"
KAFKA_WAIT_TIMEOUT="${KAFKA_WAIT_TIMEOUT:-90}"
KAFKA_HEAP_OPTS="${KAFKA_HEAP_OPTS:--Xms256m -Xmx1g}"
# shellcheck source=deployments/kafka/classpath.sh
. "$SCRIPT_DIR/classpath.sh"

HOST=127.0.0.1
BASE_PROPS="$SCRIPT_DIR/server.properties"

# Filled in by resolve_paths once KAFKA_DATA_DIR exists.
DATA_DIR=""
PID_FILE=""
LOG_FILE=""
PROPS_FILE=""
CLUSTER_ID_FILE=""
LOG_DIRS=""

die() {
  echo "kafka.sh: $*" >&2
  exit 1
}

resolve_paths() {
  mkdir -p "$KAFKA_DATA_DIR"
  DATA_DIR="$(cd "$KAFKA_DATA_DIR" && pwd)"
  PID_FILE="$DATA_DIR/kafka.pid"
  LOG_FILE="$DATA_DIR/kafka.log"
  PROPS_FILE="$DATA_DIR/server.properties"
  CLUSTER_ID_FILE="$DATA_DIR/cluster.id"
  LOG_DIRS="$DATA_DIR/data"
  TLS_DIR="$DATA_DIR/tls"
  ADMIN_PW_FILE="$DATA_DIR/admin.password"
  ENV_FILE="$DATA_DIR/admin.env"
}

check_port() {
  case "$2" in
    '' | *[!0-9]*) die "$1 must be a port number, got '$2'" ;;
  esac
}

# --- process ----------------------------------------------------------------

# Prints the broker's pid and succeeds if the pid file names a live kafka.Kafka.
running_pid() {
  broker_pid "$PID_FILE"
}

port_open() {
  timeout 1 bash -c "exec 3<>/dev/tcp/$HOST/$1" 2>/dev/null
}

# Succeeds once the broker serves metadata listing itself (or, without kcat,
# once the port accepts connections). A secured broker is ready once its client
# port accepts connections and its log says it started: kcat cannot log in.
broker_answers() {
  port_open "$KAFKA_PORT" || return 1
  if [ "$KAFKA_SECURE" = 1 ]; then
    grep -q 'Kafka Server started' "$LOG_FILE" 2>/dev/null
    return
  fi
  if command -v kcat >/dev/null 2>&1; then
    kcat -L -b "$HOST:$KAFKA_PORT" -t __none -m 2 2>/dev/null | grep -q "broker 1 at $HOST:$KAFKA_PORT"
  fi
}

# Waits for the broker; on failure prints the log tail and returns non-zero.
wait_ready() {
  local deadline pid
  deadline=$((SECONDS + KAFKA_WAIT_TIMEOUT))
  while [ "$SECONDS" -lt "$deadline" ]; do
    if ! pid="$(running_pid)"; then
      echo "kafka.sh: broker is not running (it exited, see $LOG_FILE):" >&2
      [ -f "$LOG_FILE" ] && tail -n 40 "$LOG_FILE" >&2
      return 1
    fi
    if broker_answers; then
      return 0
    fi
    sleep 0.5
  done
  echo "kafka.sh: broker did not answer on $HOST:$KAFKA_PORT within ${KAFKA_WAIT_TIMEOUT}s; last lines of $LOG_FILE:" >&2
  [ -f "$LOG_FILE" ] && tail -n 40 "$LOG_FILE" >&2
  return 1
}

# --- storage ----------------------------------------------------------------

write_props() {
  local tmp="$PROPS_FILE.tmp"
  {
    echo "# Generated by deployments/kafka/kafka.sh from deployments/kafka/server.properties; edits are overwritten."
    grep -vE '^[[:space:]]*(listeners|advertised\.listeners|controller\.quorum\.voters|log\.dirs)[[:space:]]*=' "$BASE_PROPS"
    echo
    echo "# Set by kafka.sh"
    echo "listeners=PLAINTEXT://$HOST:$KAFKA_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT"
    echo "advertised.listeners=PLAINTEXT://$HOST:$KAFKA_PORT"
    echo "controller.quorum.voters=1@$HOST:$KAFKA_CONTROLLER_PORT"
    echo "log.dirs=$LOG_DIRS"
    if [ "$KAFKA_SECURE" = 1 ]; then secure_props; fi
  } >"$tmp"
  mv "$tmp" "$PROPS_FILE"
}

# The secured broker's listeners and security settings; they override the ones above (the
# last value of a key wins in a properties file).
secure_props() {
  echo
  echo "# KAFKA_SECURE=1"
  echo "listeners=SASL_SSL://$HOST:$KAFKA_SASL_SSL_PORT,SSL://$HOST:$KAFKA_SSL_PORT,CONTROLLER://$HOST:$KAFKA_CONTROLLER_PORT"
  echo "advertised.listeners=SASL_SSL://$HOST:$KAFKA_SASL_SSL_PORT,SSL://$HOST:$KAFKA_SSL_PORT"
  echo "listener.security.protocol.map=SASL_SSL:SASL_SSL,SSL:SSL,CONTROLLER:SSL"
  echo "inter.broker.listener.name=SASL_SSL"
  echo "sasl.enabled.mechanisms=SCRAM-SHA-512"
  echo "sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512"
  echo "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required username=\"admin\" password=\"$(cat "$ADMIN_PW_FILE")\";"
  echo "ssl.keystore.type=PEM"
  echo "ssl.keystore.location=$TLS_DIR/broker-keystore.pem"
  echo "ssl.truststore.type=PEM"
  echo "ssl.truststore.location=$TLS_DIR/ca.pem"
  # Client certificates: required on the mutual-TLS and controller listeners. KRaft cannot use
  # SCRAM on the controller listener (the credentials live in the metadata it serves).
  echo "listener.name.ssl.ssl.client.auth=required"
  echo "listener.name.controller.ssl.client.auth=required"
  echo "ssl.principal.mapping.rules=RULE:^CN=([a-zA-Z0-9._-]+)\$/\$1/,DEFAULT"
  echo "authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer"
  echo "allow.everyone.if.no.acl.found=false"
  echo "super.users=User:admin;User:broker"
}

# The secured broker's TLS material, admin password and client settings file.
ensure_secrets() {
  bash "$SCRIPT_DIR/certs.sh" "$TLS_DIR" admin
  if [ ! -s "$ADMIN_PW_FILE" ]; then
    (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$ADMIN_PW_FILE")
  fi
  {
    echo "# Client settings of User:admin on the secured broker (written by kafka.sh)."
    echo "export KAFKA_BROKERS=$HOST:$KAFKA_SASL_SSL_PORT"
    echo "export KAFKA_TLS=true"
    echo "export KAFKA_TLS_CA_FILE=$TLS_DIR/ca.pem"
    echo "export KAFKA_SASL_MECHANISM=SCRAM-SHA-512"
    echo "export KAFKA_SASL_USERNAME=admin"
    echo "export KAFKA_SASL_PASSWORD_FILE=$ADMIN_PW_FILE"
  } >"$ENV_FILE"
  {
    echo "# Client settings of User:admin over mutual TLS on the secured broker (written by kafka.sh)."
    echo "export KAFKA_BROKERS=$HOST:$KAFKA_SSL_PORT"
    echo "export KAFKA_TLS=true"
    echo "export KAFKA_TLS_CA_FILE=$TLS_DIR/ca.pem"
    echo "export KAFKA_TLS_CERT_FILE=$TLS_DIR/client-admin.pem"
    echo "export KAFKA_TLS_KEY_FILE=$TLS_DIR/client-admin.key"
  } >"$DATA_DIR/admin-mtls.env"
}

ensure_formatted() {
  local cid
  if [ -f "$LOG_DIRS/meta.properties" ]; then
    return 0
  fi
  if [ -s "$CLUSTER_ID_FILE" ]; then
    cid="$(cat "$CLUSTER_ID_FILE")"
  else
    cid="$(run_tool kafka.tools.StorageTool random-uuid | tail -n 1)"
    case "$cid" in
      '' | *[!A-Za-z0-9_-]*) die "kafka.tools.StorageTool random-uuid printed '$cid', not a cluster id" ;;
    esac
    echo "$cid" >"$CLUSTER_ID_FILE"
  fi
  mkdir -p "$LOG_DIRS"
  local scram=()
  if [ "$KAFKA_SECURE" = 1 ]; then
    # The admin's SCRAM credentials go into the metadata log at format time: there is no
    # other way to log in to a broker that authenticates everyone.
    scram=(--add-scram "SCRAM-SHA-512=[name=admin,password=$(cat "$ADMIN_PW_FILE")]")
  fi
  run_tool kafka.tools.StorageTool format -t "$cid" -c "$PROPS_FILE" "${scram[@]}" >"$DATA_DIR/format.log" 2>&1 ||
    { cat "$DATA_DIR/format.log" >&2; die "formatting $LOG_DIRS failed"; }
}

# --- commands ---------------------------------------------------------------

success_line() {
  if [ "$KAFKA_SECURE" = 1 ]; then
    echo "kafka $(kafka_version) (secured) listening on SASL_SSL $HOST:$KAFKA_SASL_SSL_PORT and mutual TLS $HOST:$KAFKA_SSL_PORT (data: $DATA_DIR, log: $LOG_FILE; admin client settings: source $ENV_FILE)"
    return
  fi
  echo "kafka $(kafka_version) listening on $HOST:$KAFKA_PORT (data: $DATA_DIR, log: $LOG_FILE)"
}

cmd_start() {
  local pid
  if pid="$(running_pid)"; then
    echo "kafka already running (pid $pid) on $HOST:$KAFKA_PORT"
    return 0
  fi
  rm -f "$PID_FILE"
  if port_open "$KAFKA_PORT"; then
    die "something else is already listening on $HOST:$KAFKA_PORT (set KAFKA_PORT)"
  fi
  if port_open "$KAFKA_CONTROLLER_PORT"; then
    die "something else is already listening on $HOST:$KAFKA_CONTROLLER_PORT (set KAFKA_CONTROLLER_PORT)"
  fi
  command -v "$JAVA" >/dev/null 2>&1 || die "java ('$JAVA') not found; Java 17+ is needed"

  if [ "$KAFKA_SECURE" = 1 ] && port_open "$KAFKA_SSL_PORT"; then
    die "something else is already listening on $HOST:$KAFKA_SSL_PORT (set KAFKA_SSL_PORT)"
  fi

  ensure_classpath "$DATA_DIR"
  if [ "$KAFKA_SECURE" = 1 ]; then ensure_secrets; fi
  write_props
  ensure_formatted

  if [ -f "$LOG_FILE" ]; then
    mv -f "$LOG_FILE" "$LOG_FILE.1"
  fi
  start_kafka_jvm "$KAFKA_HEAP_OPTS" "$PROPS_FILE" "$LOG_FILE" >"$PID_FILE"

  if ! wait_ready; then
    cmd_stop >/dev/null 2>&1 || true
    exit 1
  fi
  success_line
}

cmd_stop() {
  local pid i
  if ! pid="$(running_pid)"; then
    rm -f "$PID_FILE"
    echo "kafka not running"
    return 0
  fi
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 60; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.5
  done
  if kill -0 "$pid" 2>/dev/null; then
    echo "kafka.sh: pid $pid did not stop within 30s, sending SIGKILL" >&2
    kill -KILL "$pid" 2>/dev/null || true
    for ((i = 0; i < 20; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.25
    done
  fi
  rm -f "$PID_FILE"
  echo "kafka stopped (pid $pid)"
}

cmd_status() {
  local pid
  if ! pid="$(running_pid)"; then
    echo "kafka not running"
    return 3
  fi
  if broker_answers; then
    echo "kafka running (pid $pid), answering on $HOST:$KAFKA_PORT (data: $DATA_DIR)"
  else
    echo "kafka running (pid $pid), not answering on $HOST:$KAFKA_PORT yet (log: $LOG_FILE)"
  fi
}

cmd_wait() {
  wait_ready || exit 1
  success_line
}

main() {
  check_port KAFKA_PORT "$KAFKA_PORT"
  check_port KAFKA_CONTROLLER_PORT "$KAFKA_CONTROLLER_PORT"
  if [ "$KAFKA_SECURE" = 1 ]; then
    check_port KAFKA_SSL_PORT "$KAFKA_SSL_PORT"
  fi
  resolve_paths
  case "${1:-}" in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    wait) cmd_wait ;;
    lib)
      ensure_classpath "$DATA_DIR"
      echo "$LIB_DIR"
      ;;
    restart)
      cmd_stop
      cmd_start
      ;;
    *)
      echo "usage: $0 start|stop|status|wait|restart|lib" >&2
      exit 2
      ;;
  esac
}

main "$@"
