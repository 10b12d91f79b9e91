# shellcheck shell=bash
# The Kafka classpath shared by kafka.sh (one broker) and cluster.sh (three brokers): the jars
# Maven resolves from pom.xml into lib/, the java to run them with, and the Kafka version.
# Sourced, not run. Expects SCRIPT_DIR (this directory) and a die function; uses JAVA, JAVA_HOME,
# MVN and KAFKA_JVM_OPTS from the environment.

MVN="${MVN:-mvn}"
KAFKA_JVM_OPTS="${KAFKA_JVM_OPTS:-}"
if [ -n "${JAVA:-}" ]; then
  :
elif [ -n "${JAVA_HOME:-}" ] && [ -x "$JAVA_HOME/bin/java" ]; then
  JAVA="$JAVA_HOME/bin/java"
else
  JAVA=java
fi

POM="$SCRIPT_DIR/pom.xml"
LIB_DIR="$SCRIPT_DIR/lib"
STAMP="$LIB_DIR/.pom.sha256"
LOG4J_CONF="$SCRIPT_DIR/log4j2.properties"

pom_sum() {
  sha256sum "$POM" | cut -d' ' -f1
}

# Resolve the jars into lib/ unless the stamp says lib/ matches this pom. $1 is a directory
# for mvn.log.
ensure_classpath() {
  local want logdir="$1"
  want="$(pom_sum)"
  if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    return 0
  fi
  command -v "$MVN" >/dev/null 2>&1 || die "maven ('$MVN') not found; it is needed once to fetch Kafka into $LIB_DIR"
  echo "resolving Kafka jars into $LIB_DIR (first run downloads from Maven Central)" >&2
  rm -rf "$LIB_DIR"
  if ! "$MVN" -B -q -Dstyle.color=never -f "$POM" package >"$logdir/mvn.log" 2>&1; then
    tail -n 40 "$logdir/mvn.log" >&2
    rm -rf "$LIB_DIR"
    die "maven failed to resolve the Kafka classpath (full output: $logdir/mvn.log)"
  fi
  ls "$LIB_DIR"/kafka_2.13-*.jar >/dev/null 2>&1 || die "maven ran but $LIB_DIR has no kafka_2.13 jar"
  echo "$want" >"$STAMP"
}

kafka_version() {
  local jar
  for jar in "$LIB_DIR"/kafka_2.13-*.jar; do
    [ -f "$jar" ] || continue
    jar="${jar##*/kafka_2.13-}"
    echo "${jar%.jar}"
    return 0
  done
  echo unknown
}

# Runs a Kafka tool class (e.g. kafka.tools.StorageTool) on the classpath.
run_tool() {
  # shellcheck disable=SC2086 # KAFKA_JVM_OPTS is a list of flags
  "$JAVA" -Xmx256m $KAFKA_JVM_OPTS \
    -Dlog4j2.configurationFile="$LOG4J_CONF" \
    -cp "$LIB_DIR/*" "$@"
}

# Starts kafka.Kafka on a properties file in the background, output to a log file; prints its
# pid. $1 heap flags, $2 properties, $3 log file.
start_kafka_jvm() {
  local heap="$1" props="$2" log="$3"
  # shellcheck disable=SC2086 # heap and JVM opts are lists of flags
  nohup "$JAVA" $heap \
    -server -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:InitiatingHeapOccupancyPercent=35 \
    -XX:+ExplicitGCInvokesConcurrent -Djava.awt.headless=true \
    $KAFKA_JVM_OPTS \
    -Dlog4j2.configurationFile="$LOG4J_CONF" \
    -cp "$LIB_DIR/*" kafka.Kafka "$props" \
    >"$log" 2>&1 </dev/null &
  local pid=$! i
  # Until the background shell has exec'd java, its command line is still bash's: callers that
  # check for kafka.Kafka right away would take a starting broker for one that exited.
  for ((i = 0; i < 100; i++)); do
    if ! kill -0 "$pid" 2>/dev/null || tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null | grep -q 'kafka\.Kafka'; then
      break
    fi
    sleep 0.05
  done
  echo "$pid"
}

# Prints the pid in pid file $1 and succeeds if it names a live kafka.Kafka: a pid file left by a
# crash, or a pid the kernel gave to another process since, is not taken for a running broker.
broker_pid() {
  local pid
  [ -f "$1" ] || return 1
  pid="$(cat "$1" 2>/dev/null || true)"
  case "$pid" in
    '' | *[!0-9]*) return 1 ;;
  esac
  kill -0 "$pid" 2>/dev/null || return 1
  if [ -r "/proc/$pid/cmdline" ]; then
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q 'kafka\.Kafka' || return 1
  fi
  echo "$pid"
}
