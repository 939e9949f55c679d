#!/usr/bin/env bash
# The whole test suite, as CI runs it: formatting, lints, every test (doc tests
# too) against a real Kafka broker, then the failover scenarios on a three-broker
# cluster. Starts Kafka on 127.0.0.1 when nothing answers at
# KAFKA_BOOTSTRAP_SERVERS, starts the cluster, and stops what it started, also
# when tests fail.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

export KAFKA_BOOTSTRAP_SERVERS="${KAFKA_BOOTSTRAP_SERVERS:-127.0.0.1:9092}"
export CARGO_TERM_COLOR="${CARGO_TERM_COLOR:-never}"
first="${KAFKA_BOOTSTRAP_SERVERS%%,*}"
# A one-off CI build gains nothing from incremental state (about 3 GB of it).
if [ -n "${CI:-}" ]; then export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"; fi

step() { printf '\n== %s\n' "$*"; }

started_kafka=""
started_cluster=""
watchdog=""
cleanup() {
  if [ -n "$watchdog" ]; then kill "$watchdog" 2>/dev/null || true; fi
  if [ -n "$started_cluster" ]; then scripts/kafka.sh cluster stop; fi
  if [ -n "$started_kafka" ]; then scripts/kafka.sh stop; fi
}
trap cleanup EXIT

step "toolchain"
command -v cargo >/dev/null || { echo "test.sh: cargo is missing; install Rust with rustup (https://rustup.rs)" >&2; exit 1; }
if command -v rustup >/dev/null; then
  rustup component list --installed 2>/dev/null | grep -q '^rustfmt' || rustup component add rustfmt
  rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy
fi
cargo --version
df -h . | tail -n 1 | awk '{print "disk free here: " $4}'

step "kafka at $KAFKA_BOOTSTRAP_SERVERS"
if scripts/kafka.sh probe "$first"; then
  echo "using the broker that already answers there"
else
  case "$first" in
    127.0.0.1:*|localhost:*) ;;
    *) echo "test.sh: no Kafka answers at $first and it is not local, so it cannot be started here" >&2; exit 1 ;;
  esac
  export KAFKA_PORT="${first##*:}"
  started_kafka=1
  scripts/kafka.sh start
fi

step "python with Confluent's client (interop tests, Python recipe)"
PROTOBUS_PYTHON="$(scripts/python-env.sh)"
export PROTOBUS_PYTHON
"$PROTOBUS_PYTHON" -c 'import confluent_kafka; print("confluent-kafka", confluent_kafka.version()[0])'

step "node with the AsyncAPI parser (catalog check)"
PROTOBUS_NODE_MODULES="$(scripts/node-env.sh)"
export PROTOBUS_NODE_MODULES
node --version

step "go with protoc and its plugins (Go recipe)"
PROTOBUS_GO_BIN="$(scripts/go-env.sh)"
export PROTOBUS_GO_BIN
go version
protoc --version

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy"
cargo clippy --workspace --all-targets --all-features --locked -- -D warnings
# The cluster scenarios are not among --all-targets (a plain `cargo test` skips them).
cargo clippy --test cluster --locked -- -D warnings

step "cargo doc"
RUSTDOCFLAGS="-D warnings" cargo doc --workspace --no-deps --all-features --locked

step "cargo test"
# Fault tests start a member in a process of its own (protobus-fixtures'
# recording-consumer); tests/it/example_consumer.rs runs examples/consumer.rs.
cargo build --workspace --bins --examples --locked
# Fault scenarios append their figure lines here; printed below as a summary.
target_dir="${CARGO_TARGET_DIR:-$PWD/target}"
export PROTOBUS_FIGURES="$target_dir/fault-figures.txt"
rm -f "$PROTOBUS_FIGURES"
# A test binary running longer than this (the slowest, the compile tests and
# tests/it with every integration test, take 4 to 11 minutes) is taken as
# hung: its threads' stacks are printed and it is killed.
scripts/test-watchdog.sh "$target_dir" "${PROTOBUS_TEST_LIMIT_SECONDS:-1800}" &
watchdog=$!
cargo test --workspace --all-targets --locked
# OpenTelemetry export is a feature; its test, a binary of its own because it
# installs a process-wide span exporter, needs it on.
cargo test --features otel --test otel_export --locked
cargo test --workspace --doc --all-features --locked

step "failover scenarios on a three-broker cluster"
if ! scripts/kafka.sh cluster status >/dev/null; then started_cluster=1; fi
scripts/kafka.sh cluster start
cargo test --test cluster --locked

step "fault-injection figures (sent, acknowledged, consumed, duplicates, lost)"
cat "$PROTOBUS_FIGURES"

step "disk used by the build"
du -sh "$target_dir"
