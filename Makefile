# choreo: the commands a user and CI run. `make help` lists them.
GO        ?= go
BIN       := bin
PKGS      := ./...

.PHONY: help run build test test-fast test-integration generate lint bench kafka kafka-stop up down smoke clean kafka-secure kafka-secure-stop up-secure test-secure

help: ## list targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-12s %s\n", $$1, $$2}'

run: ## run the whole choreography in one process (embedded Kafka, registry, services)
	$(GO) run ./cmd/choreo dev

build: ## build the CLI and the three services into bin/
	$(GO) build -o $(BIN)/ ./cmd/choreo ./services/account ./services/user ./services/notification

test: lint schema-check test-fast test-interop test-integration test-k8s bench-check ## the README test command (CI then adds test-secure, test-containers, smoke, test-faults): lint, the schema-evolution gate, the suite on kfake+SQLite with -race, Confluent's client against choreo, the suite on real Kafka+PostgreSQL, the Kubernetes manifests, the bench harness

test-fast: asyncapi-validator ## the whole suite on the embedded broker (kfake) and SQLite, with the race detector
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

# The module requires choreo through a replace: -mod=mod resolves what choreo's go.mod adds
# without a manual go mod tidy in deployments/k8s.
test-k8s: ## render deployments/k8s with kustomize and check the objects against the Kubernetes API types and the code (a module of its own)
	cd deployments/k8s && GOFLAGS=-mod=mod $(GO) vet ./... && GOFLAGS=-mod=mod $(GO) test -count=1 ./...

test-integration: ## the whole suite with -race on a real Apache Kafka broker and PostgreSQL (started here unless KAFKA_BROKERS / TEST_DATABASE_URL are set)
	GO=$(GO) bash deployments/local/integration.sh

generate: ## regenerate Go event types from schemas/*.avsc, schemas/CATALOG.md and the AsyncAPI documents
	$(GO) generate ./...
	$(GO) run ./cmd/choreo catalog docs -o schemas/CATALOG.md
	$(GO) run ./cmd/choreo catalog asyncapi -o schemas/asyncapi

lint: ## gofmt and go vet
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

# make bench: one run, one broker, one table (bench/, a module of its own so that Watermill and
# Sarama stay out of choreo's go.mod). -mod=mod as for interop/confluent.
BENCH_N  ?= 20000
DURATION ?= 60s
BROKERS  ?=
.PHONY: bench-micro bench-check
bench: build ## the registration chain end to end (publish to SMTP): choreo's services on SQLite and PostgreSQL, bare franz-go, Watermill; one broker, one table (BROKERS=host:port for a real broker, DURATION=10s, BENCH_N=20000)
	cd bench && GOFLAGS=-mod=mod $(GO) build -o ../$(BIN)/choreo-bench . && \
	  ../$(BIN)/choreo-bench -bin ../$(BIN) -root .. -n $(BENCH_N) -duration $(DURATION) $(if $(BROKERS),-brokers $(BROKERS))

bench-check: ## go vet and the test of make bench's harness (a tiny run of every system on the embedded broker; about half a minute)
	cd bench && GOFLAGS=-mod=mod $(GO) vet ./... && GOFLAGS=-mod=mod $(GO) test -count=1 -timeout 10m ./...

bench-micro: ## micro benchmarks: codec, the in-process chain against bare franz-go on the embedded broker, the 300-event catalog, one hop (consumer, transaction, outbox, relay) in process
	$(GO) test -run '^$$' -bench . -benchmem ./pkg/codec/
	$(GO) test -run '^$$' -bench . -benchtime 20000x ./services/stack/
	$(GO) test -run '^$$' -bench . ./pkg/catalog/
	$(GO) test -run '^$$' -bench Hop -benchtime 10000x ./pkg/consumer/

.PHONY: compare
COMPARE_N ?= 200
compare: build ## registration choreographed vs orchestrated (REGISTRATION_MODE), Notification Service down, slow, hung: COMPARE_N (200) registrations per run, one table (BROKERS=host:port for a real broker); not in CI
	bash -o pipefail -c "$(if $(BROKERS),KAFKA_BROKERS=$(BROKERS)) CHOREO_COMPARE_N=$(COMPARE_N) CHOREO_COMPARE_BIN=$(CURDIR)/$(BIN) $(GO) test -count=1 -timeout 10m -run '^TestCompare$$' -v ./deployments/compare/ | grep -Ev '^ *(=== (RUN|PAUSE|CONT)|--- PASS|PASS$$|ok )'"

kafka: ## start a real Apache Kafka 4.x broker (KRaft, from Maven Central) on 127.0.0.1:9092
	bash deployments/kafka/kafka.sh start

kafka-stop: ## stop that broker
	bash deployments/kafka/kafka.sh stop

.PHONY: kafka-cluster kafka-cluster-stop
kafka-cluster: ## start a three-broker Kafka cluster (KRaft, 3 controllers) on 127.0.0.1:19092-19094
	bash deployments/kafka/cluster.sh start

kafka-cluster-stop: ## stop that cluster
	bash deployments/kafka/cluster.sh stop

up: ## the full stack as separate processes: docker compose, or local processes without Docker
	bash deployments/local/up.sh

down: ## stop what make up started
	bash deployments/local/down.sh

kafka-secure: ## start the secured broker (SASL_SSL + SCRAM-SHA-512 on 9094, mutual TLS on 9095, ACLs enforced)
	bash deployments/kafka/kafka-secure.sh start

kafka-secure-stop: ## stop that broker
	bash deployments/kafka/kafka-secure.sh stop

up-secure: ## make up on the secured broker: topics, users and ACLs from the catalog (choreo acls apply), each service its own principal
	CHOREO_UP_SECURE=1 bash deployments/local/up.sh

test-secure: ## the secured suite (TLS, SCRAM, per-service ACLs, denied writes, start-up errors) on the secured broker, started here
	GO=$(GO) bash deployments/local/secure-test.sh

smoke: ## make up, the README kcat recipe, make down
	bash deployments/local/smoke.sh

clean: ## remove build output and local state (var/)
	rm -rf $(BIN) var

.PHONY: schema-check test-interop test-k8s
# -mod=mod: the module replaces choreo with this checkout, so a dependency added to choreo's go.mod
# is resolved here without a manual go mod tidy in interop/confluent.
test-interop: ## Confluent's own Go client (registry client, Avro serde; cgo) reads and writes choreo's events: module interop/confluent
	cd interop/confluent && CGO_ENABLED=1 GOFLAGS=-mod=mod $(GO) vet ./... && CGO_ENABLED=1 GOFLAGS=-mod=mod $(GO) test -count=1 -timeout 15m ./...

schema-check: ## the schema-evolution gate: every schemas/*.avsc against its history (schemas/history/) under its catalog compatibility level
	$(GO) run ./cmd/choreo schema check

.PHONY: fuzz test-faults test-faults-cluster
FUZZTIME ?= 30s
fuzz: ## run each fuzzer for FUZZTIME (default 30s); the seed corpora run in make test
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeRecord$$' -fuzztime $(FUZZTIME) ./pkg/codec/
	$(GO) test -run '^$$' -fuzz '^FuzzEncodeEvent$$' -fuzztime $(FUZZTIME) ./pkg/avrojson/
	$(GO) test -run '^$$' -fuzz '^FuzzToBinary$$' -fuzztime $(FUZZTIME) ./pkg/avrojson/
	$(GO) test -run '^$$' -fuzz '^FuzzRegister$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./services/account/internal/api/

test-faults: ## fault tests: 2,000 registrations per scenario through service processes on a real broker and PostgreSQL, with kill -9, broker restart, rebalance and injected duplicates, and on a three-broker cluster (kill -9 of brokers)
	CHOREO_FAULTS=1 $(GO) test -count=1 -timeout 30m -v ./faults/

test-faults-cluster: ## only the fault tests on a three-broker cluster of their own (kill -9 of the leading broker, two brokers lost)
	CHOREO_FAULTS=1 $(GO) test -count=1 -timeout 30m -v -run TestClusterFaults ./faults/

.PHONY: container-images test-containers
container-images: ## build the local container images through Podman, no registry needed (cached: seconds when nothing changed)
	GO=$(GO) bash deployments/containers/containers.sh images

test-containers: ## through Podman: the behaviour suite on a Kafka container (testcontainers-go) and the docker-compose.yml stack
	GO=$(GO) bash deployments/containers/containers.sh test

# The AsyncAPI documents are validated by the AsyncAPI project's parser (npm), which the Go test
# of pkg/asyncapi runs with node. npm ci runs only when package-lock.json is newer than the
# installed packages; without npm the test says SKIPPED (no node) or installs them itself.
ASYNCAPI_VALIDATOR := schemas/asyncapi/validate
.PHONY: asyncapi-validator
asyncapi-validator: ## install the AsyncAPI validator's npm packages (only when package-lock.json changed)
	@if ! command -v npm >/dev/null 2>&1; then echo "npm not installed: the AsyncAPI validation test will say SKIPPED"; \
	elif [ ! -f $(ASYNCAPI_VALIDATOR)/node_modules/.package-lock.json ] || \
	     [ $(ASYNCAPI_VALIDATOR)/package-lock.json -nt $(ASYNCAPI_VALIDATOR)/node_modules/.package-lock.json ]; then \
	  npm ci --prefix $(ASYNCAPI_VALIDATOR) --ignore-scripts --no-audit --no-fund; fi
