#!/usr/bin/env bash
# kafka-run-class.sh CLASS ARGS...: a Kafka tool on the broker's classpath (quiet logging).
exec java -Xmx256m ${KAFKA_OPTS:-} -cp '/opt/kafka/libs/*' \
  -Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties "$@"
