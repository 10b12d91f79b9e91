#!/usr/bin/env bash
# The secured single-node broker: kafka.sh with KAFKA_SECURE=1 (see kafka.sh for its settings).
# usage: kafka-secure.sh start|stop|status|wait|restart
KAFKA_SECURE=1 exec bash "$(dirname "${BASH_SOURCE[0]}")/kafka.sh" "$@"
