#!/usr/bin/env bash
# Containers on a machine without Docker and without a registry: Podman from Debian, its
# Docker-compatible API for testcontainers-go and docker compose, and every image the compose
# stack and the tests use built here (see README.md in this directory).
#
# usage: containers.sh install|images|start|stop|running|env|test
#   install  Podman, docker-compose 1.29 and debootstrap from apt (skipped when present) and the
#            Podman configuration this needs (state dir, see below)
#   images   install, then build every local image; an image whose inputs did not change since
#            its last build (label dev.choreo.inputs) is kept, so a second run takes seconds
#   start    start Podman's Docker-compatible API service on a unix socket (pid file)
#   stop     stop it, by that pid
#   running  succeed when it runs
#   env      print the environment (export lines) that points Docker clients, testcontainers
#            and docker-compose.yml at the service and the local images
#   test     images, start, the container tests (CHOREO_TEST_DOCKER=1 go test of the packages
#            on kafkatest, and the compose stack test), stop: stopped even when a test fails
#
# env:
#   CHOREO_CONTAINERS_DIR  state: containers.conf, socket, pid, logs (default <repo>/var/containers)
#   GO                     go to use (default go)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
here="$root/deployments/containers"
state="${CHOREO_CONTAINERS_DIR:-$root/var/containers}"
GO="${GO:-go}"
conf="$state/containers.conf"
sock="$state/podman.sock"
pidf="$state/podman.pid"
export CONTAINERS_CONF="$conf"

# Local image names: the public images' roles under localhost/choreo/.
prefix=localhost/choreo
base_image=$prefix/debian:bookworm
jre_image=$prefix/jre:17
golang_image=$prefix/golang:local
mailpit_version=v1.27.11 # the newest Mailpit release the Go module proxy serves whole
label=dev.choreo.inputs

die() {
  echo "containers.sh: $*" >&2
  exit 1
}
log() { echo "containers.sh: $*" >&2; }

kafka_version() {
  sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$root/deployments/kafka/pom.xml"
}

kafka_image() { echo "$prefix/kafka:$(kafka_version)"; }

# --- install ------------------------------------------------------------------

# apt_install PKG...: apt-get install, retried while another apt holds the dpkg lock.
apt_install() {
  local i
  export DEBIAN_FRONTEND=noninteractive
  for i in $(seq 1 30); do
    if apt-get update -qq && apt-get install -y -qq "$@" >/dev/null; then
      return 0
    fi
    log "apt-get failed (attempt $i; another apt may hold the lock), retrying in 10 s"
    sleep 10
  done
  die "apt-get install $* failed"
}

cmd_install() {
  if ! command -v podman >/dev/null || ! command -v debootstrap >/dev/null; then
    log "installing podman and debootstrap"
    apt_install podman debootstrap
  fi
  if ! command -v docker-compose >/dev/null && ! docker compose version >/dev/null 2>&1; then
    # Without recommends: docker-compose recommends docker.io, a second engine we do not use.
    log "installing docker-compose"
    apt_install --no-install-recommends docker-compose
  fi
  mkdir -p "$state"
  # As root in this kind of machine (a container itself), crun fails on the hybrid cgroup
  # hierarchy and the default ulimits fail without CAP_SYS_RESOURCE.
  cat >"$conf.tmp" <<'EOF'
# Written by deployments/containers/containers.sh; edits are overwritten.
[containers]
default_ulimits = ["nofile=20000:20000", "nproc=32768:32768"]

[engine]
runtime = "runc"
EOF
  mv "$conf.tmp" "$conf"
}

# --- images ---------------------------------------------------------------------

# inputs_hash FILE|DIR|-STRING...: one hash over files' contents, directories' files and strings.
inputs_hash() {
  local a
  for a in "$@"; do
    if [ -d "$a" ]; then
      (cd "$a" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum)
    elif [ -f "$a" ]; then
      sha256sum <"$a"
    else
      echo "$a"
    fi
  done | sha256sum | cut -c1-32
}

image_id() { podman image inspect --format '{{.Id}}' "$1" 2>/dev/null; }

# fresh IMAGE HASH: whether IMAGE exists and was built from inputs with HASH.
fresh() {
  [ "$(podman image inspect --format "{{index .Labels \"$label\"}}" "$1" 2>/dev/null)" = "$2" ]
}

# build IMAGE HASH CONTEXT DOCKERFILE [podman build args...]
build() {
  local image=$1 hash=$2 ctx=$3 file=$4 t0=$SECONDS
  shift 4
  if fresh "$image" "$hash"; then
    log "$image is up to date"
    return
  fi
  log "building $image"
  podman build -q --layers --label "$label=$hash" -t "$image" -f "$file" "$@" "$ctx" >/dev/null ||
    die "building $image failed"
  log "built $image in $((SECONDS - t0)) s"
}

# The Debian mirror apt uses here: containers reach it too, and debootstrap starts from it.
debian_mirror() {
  local m
  m=$(grep -hsE '^(URIs:|deb )' /etc/apt/sources.list.d/*.sources /etc/apt/sources.list.d/*.list /etc/apt/sources.list 2>/dev/null |
    grep -oE 'https?://[^ ]+/debian/?( |$)' | head -n 1 | tr -d ' ')
  echo "${m:-http://deb.debian.org/debian}"
}

build_base() {
  local mirror hash rootfs t0=$SECONDS cabundle=/etc/ssl/certs/ca-certificates.crt
  [ -f "$cabundle" ] || die "$cabundle not found (apt-get install ca-certificates)"
  mirror=$(debian_mirror)
  hash=$(inputs_hash "debootstrap --variant=minbase --include=ca-certificates bookworm $mirror" "$cabundle")
  if fresh "$base_image" "$hash"; then
    log "$base_image is up to date"
    return
  fi
  log "building $base_image with debootstrap from $mirror"
  rootfs="$state/rootfs"
  rm -rf "$rootfs"
  debootstrap --variant=minbase --include=ca-certificates bookworm "$rootfs" "$mirror" >"$state/debootstrap.log" 2>&1 ||
    { tail -n 20 "$state/debootstrap.log" >&2; die "debootstrap failed (log: $state/debootstrap.log)"; }
  rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
  # The containers reach the network the way this machine does: they trust what it trusts (the
  # Go module proxy may sit behind a certificate authority of the site's own).
  cp "$cabundle" "$rootfs/etc/ssl/certs/ca-certificates.crt"
  tar -C "$rootfs" -c . | podman import -q --change "LABEL $label=$hash" --change 'CMD ["/bin/bash"]' - "$base_image" >/dev/null
  rm -rf "$rootfs"
  log "built $base_image in $((SECONDS - t0)) s"
}

# A Go toolchain image from the Go that runs the tests (the golang image cannot be pulled), with
# the same module proxy settings.
build_golang() {
  local goroot hash
  goroot=$("$GO" env GOROOT)
  hash=$(inputs_hash "$("$GO" version) GOROOT=$goroot" "$(image_id "$base_image")" "$here/golang/Dockerfile" \
    "$("$GO" env GOPROXY GOSUMDB GONOSUMDB GOPRIVATE)")
  build "$golang_image" "$hash" "$goroot" "$here/golang/Dockerfile" \
    --build-arg "BASE_IMAGE=$base_image" \
    --build-arg "GOPROXY=$("$GO" env GOPROXY)" --build-arg "GOSUMDB=$("$GO" env GOSUMDB)"
}

build_services() {
  local hash svc
  hash=$(inputs_hash "$(image_id "$golang_image")" "$(image_id "$base_image")" "$root/go.mod" "$root/go.sum" \
    "$root/Dockerfile" "$root/.dockerignore" "$root/cmd" "$root/pkg" "$root/services" "$root/schemas")
  for svc in account user notification choreo; do
    build "$(service_image "$svc")" "$hash" "$root" "$root/Dockerfile" \
      --build-arg "SERVICE=$svc" --build-arg "GOLANG_IMAGE=$golang_image" --build-arg "RUNTIME_IMAGE=$base_image" \
      --build-arg TARGETOS=linux --build-arg "TARGETARCH=$("$GO" env GOARCH)" # podman 4.3 does not set them
  done
}

service_image() {
  case "$1" in
    choreo) echo "$prefix/choreo:dev" ;;
    *) echo "$prefix/$1-service:dev" ;;
  esac
}

build_mailpit() {
  local hash bin="$state/mailpit-bin"
  hash=$(inputs_hash "$mailpit_version" "$(image_id "$base_image")" "$here/mailpit/Dockerfile")
  if fresh "$prefix/mailpit:$mailpit_version" "$hash"; then
    log "$prefix/mailpit:$mailpit_version is up to date"
    return
  fi
  # Built on the host: its module and build caches are warm, a build container's are not.
  log "building mailpit $mailpit_version from the Go module proxy"
  mkdir -p "$bin"
  (cd "$state" && CGO_ENABLED=0 GOBIN="$bin" GOFLAGS= "$GO" install -trimpath -ldflags='-s -w' \
    "github.com/axllent/mailpit@$mailpit_version") || die "go install mailpit failed"
  build "$prefix/mailpit:$mailpit_version" "$hash" "$bin" "$here/mailpit/Dockerfile" \
    --build-arg "BASE_IMAGE=$base_image"
}

cmd_images() {
  local t0=$SECONDS lib
  cmd_install
  command -v "$GO" >/dev/null || die "go ($GO) not found"
  build_base
  build_golang
  build_services
  build "$jre_image" "$(inputs_hash "$(image_id "$base_image")" "$here/jre")" "$here/jre" "$here/jre/Dockerfile" \
    --build-arg "BASE_IMAGE=$base_image"
  lib=$(KAFKA_DATA_DIR="$state/kafka-lib" bash "$root/deployments/kafka/kafka.sh" lib) || die "resolving the Kafka jars failed"
  build "$(kafka_image)" "$(inputs_hash "$(image_id "$jre_image")" "$here/kafka" "$lib" "$root/deployments/kafka/log4j2.properties")" \
    "$root/deployments" "$here/kafka/Dockerfile" --build-arg "JRE_IMAGE=$jre_image"
  build "$prefix/postgres:15" "$(inputs_hash "$(image_id "$base_image")" "$here/postgres")" "$here/postgres" \
    "$here/postgres/Dockerfile" --build-arg "BASE_IMAGE=$base_image"
  build "$prefix/schema-registry:dev" "$(inputs_hash "$(image_id "$base_image")" "$(image_id "$(service_image choreo)")" "$here/registry")" \
    "$here/registry" "$here/registry/Dockerfile" --build-arg "BASE_IMAGE=$base_image" --build-arg "CHOREO_IMAGE=$(service_image choreo)"
  build_mailpit
  log "images ready in $((SECONDS - t0)) s"
}

# --- API service ----------------------------------------------------------------

running_pid() {
  local pid
  pid=$(cat "$pidf" 2>/dev/null) || return 1
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

cmd_start() {
  local pid
  [ -f "$conf" ] || cmd_install
  if pid=$(running_pid); then
    log "podman API service already running (pid $pid) on $sock"
    return
  fi
  rm -f "$sock"
  # --time=0: no idle timeout; the service lives until stop.
  nohup podman system service --time=0 "unix://$sock" >"$state/podman-service.log" 2>&1 </dev/null &
  echo $! >"$pidf"
  for _ in $(seq 1 100); do
    if [ -S "$sock" ] && DOCKER_HOST="unix://$sock" curl -fsS --unix-socket "$sock" http://d/_ping >/dev/null 2>&1; then
      log "podman API service (pid $(cat "$pidf")) on unix://$sock"
      return
    fi
    running_pid >/dev/null || break
    sleep 0.1
  done
  tail -n 20 "$state/podman-service.log" >&2
  cmd_stop
  die "the podman API service did not answer on $sock"
}

cmd_stop() {
  local pid
  if ! pid=$(running_pid); then
    rm -f "$pidf"
    return
  fi
  kill -TERM "$pid"
  for _ in $(seq 1 100); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.1
  done
  kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
  rm -f "$pidf" "$sock"
  log "podman API service (pid $pid) stopped"
}

# cmd_env prints the engine's variables, and the local image names for every CHOREO_*_IMAGE
# not set already.
cmd_env() {
  local name value
  cat <<EOF
export DOCKER_HOST=unix://$sock
export CONTAINERS_CONF=$conf
export TESTCONTAINERS_RYUK_DISABLED=true
export TESTCONTAINERS_HOST_OVERRIDE=127.0.0.1
EOF
  while read -r name value; do
    echo "export $name=\"\${$name:-$value}\""
  done <<EOF
CHOREO_KAFKA_IMAGE $(kafka_image)
CHOREO_SCHEMA_REGISTRY_IMAGE $prefix/schema-registry:dev
CHOREO_POSTGRES_IMAGE $prefix/postgres:15
CHOREO_MAILPIT_IMAGE $prefix/mailpit:$mailpit_version
CHOREO_ACCOUNT_IMAGE $(service_image account)
CHOREO_USER_IMAGE $(service_image user)
CHOREO_NOTIFICATION_IMAGE $(service_image notification)
CHOREO_CLI_IMAGE $(service_image choreo)
CHOREO_GOLANG_IMAGE $golang_image
CHOREO_RUNTIME_IMAGE $base_image
EOF
}

# Packages whose tests take their broker from kafkatest (directly or through stacktest): the
# behaviour suite. Modules of their own under the repository (interop/) are not in ./...
kafka_packages() {
  (cd "$root" && "$GO" list -f '{{.ImportPath}} {{join .TestImports " "}} {{join .XTestImports " "}}' ./... |
    awk '/ github.com\/choreo-dev\/choreo\/(pkg\/kafkatest|services\/stack\/stacktest)( |$)/ {print $1}')
}

cmd_test() {
  local rc=0 t0
  cmd_images
  trap 'cmd_stop; remove_leftovers' EXIT
  cmd_start
  eval "$(cmd_env)"
  t0=$SECONDS
  echo "--- the behaviour suite on a Kafka container (testcontainers-go, $CHOREO_KAFKA_IMAGE)"
  # shellcheck disable=SC2046 # one package per line
  (cd "$root" && CHOREO_TEST_DOCKER=1 KAFKA_BROKERS= "$GO" test -count=1 -timeout 10m $(kafka_packages)) || rc=1
  echo "--- testcontainers path: $((SECONDS - t0)) s"
  t0=$SECONDS
  echo "--- the compose stack (docker-compose.yml on the local images)"
  (cd "$root" && CHOREO_TEST_COMPOSE=1 "$GO" test -count=1 -timeout 10m -run TestStack -v ./deployments/compose/) || rc=1
  echo "--- compose stack: $((SECONDS - t0)) s"
  return $rc
}

# remove_leftovers removes what the tests' own cleanup did not (a test binary killed on a
# timeout): the containers kafkatest labels, the stack test's compose projects
# (choreo-stacktest-*), and the network testcontainers creates.
remove_leftovers() {
  local ids
  ids=$( (podman ps -aq --filter label=dev.choreo.kafkatest
    podman ps -a --format '{{.ID}} {{.Names}}' | awk '$2 ~ /^choreo-stacktest-/ {print $1}') 2>/dev/null || true)
  if [ -n "$ids" ]; then
    log "removing containers the tests left: $(echo $ids)"
    # shellcheck disable=SC2086
    podman rm -f -t 5 $ids >/dev/null 2>&1 || true
  fi
  podman volume ls -q 2>/dev/null | grep '^choreo-stacktest-' | xargs -r podman volume rm -f >/dev/null 2>&1 || true
  podman network ls --format '{{.Name}}' 2>/dev/null | grep -E '^(choreo-stacktest-.*|reaper_default)$' |
    xargs -r podman network rm -f >/dev/null 2>&1 || true
}

case "${1:-}" in
  install) cmd_install ;;
  images) cmd_images ;;
  start) cmd_start ;;
  stop) cmd_stop ;;
  running) running_pid >/dev/null ;;
  env) cmd_env ;;
  test) cmd_test ;;
  *)
    echo "usage: $0 install|images|start|stop|running|env|test" >&2
    exit 2
    ;;
esac
