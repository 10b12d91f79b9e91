# syntax=docker/dockerfile:1
#
# One image per choreo binary, all from this file. SERVICE picks the binary:
#
#   docker build --build-arg SERVICE=account      -t choreo/account-service .
#   docker build --build-arg SERVICE=user         -t choreo/user-service .
#   docker build --build-arg SERVICE=notification -t choreo/notification-service .
#   docker build                                  -t choreo/choreo .   # the CLI (default)
#
# docker-compose.yml builds the three services this way. The build stage does not depend on
# SERVICE, so BuildKit builds the four binaries once and every image copies its own out of it.
# The Go module and build caches are BuildKit cache mounts: a rebuild after a code change
# recompiles only what changed.

# The base images are build arguments so that a machine without a registry can build from
# images of its own (deployments/containers does); the defaults are the public images.
# The builder's Go must be at least the go line of go.mod (the official image sets
# GOTOOLCHAIN=local, so it will not download a newer one): deployments/compose's test checks it.
ARG GOLANG_IMAGE=golang:1.26.8-bookworm
ARG RUNTIME_IMAGE=gcr.io/distroless/static-debian12:nonroot

FROM --platform=$BUILDPLATFORM ${GOLANG_IMAGE} AS build
ARG TARGETOS
ARG TARGETARCH
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=$TARGETOS GOARCH=$TARGETARCH \
    go build -trimpath -ldflags="-s -w" -o /out/ \
        ./services/account ./services/user ./services/notification ./cmd/choreo
# The data directory the services' volume is mounted on, owned by distroless's nonroot user
# (65532): a fresh named volume takes the ownership of the directory it is mounted on.
RUN mkdir -p /rootfs/data

FROM ${RUNTIME_IMAGE}
# account, user, notification or choreo: the name of a directory /out/ holds a binary of.
ARG SERVICE=choreo
LABEL org.opencontainers.image.title="choreo ${SERVICE}" \
      org.opencontainers.image.source="https://github.com/choreo-dev/choreo"
COPY --from=build --chown=65532:65532 /rootfs/ /
COPY --from=build /out/${SERVICE} /app
ENV DATA_DIR=/data
USER 65532:65532
ENTRYPOINT ["/app"]
