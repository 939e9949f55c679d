#!/usr/bin/env bash
# Installs (once) what the Go recipe generates code with: protoc from Debian's
# protobuf-compiler when it is missing, and protoc-gen-go and
# protoc-gen-go-grpc from the Go module proxy into a cache outside the repo.
# Prints the directory holding the plugins (put it on PATH).
set -euo pipefail
PROTOC_GEN_GO=v1.36.12
PROTOC_GEN_GO_GRPC=v1.6.2
cache_root="${PROTOBUS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/protobus}"
bin="$cache_root/go-bin-$PROTOC_GEN_GO-$PROTOC_GEN_GO_GRPC"

command -v go >/dev/null 2>&1 || { echo "go-env.sh: Go is needed (https://go.dev/doc/install)" >&2; exit 1; }
if ! command -v protoc >/dev/null 2>&1; then
  echo "go-env.sh: installing protoc (Debian's protobuf-compiler)" >&2
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  if ! $sudo apt-get install -y -q protobuf-compiler >&2; then
    $sudo apt-get update -q >&2
    $sudo apt-get install -y -q protobuf-compiler >&2
  fi
fi
if [ ! -f "$bin/.complete" ]; then
  echo "go-env.sh: installing protoc-gen-go $PROTOC_GEN_GO and protoc-gen-go-grpc $PROTOC_GEN_GO_GRPC into $bin" >&2
  rm -rf "$bin"
  GOBIN="$bin" go install "google.golang.org/protobuf/cmd/protoc-gen-go@$PROTOC_GEN_GO" >&2
  GOBIN="$bin" go install "google.golang.org/grpc/cmd/protoc-gen-go-grpc@$PROTOC_GEN_GO_GRPC" >&2
  touch "$bin/.complete"
fi
echo "$bin"
