#!/usr/bin/env bash
# Builds the peers of `cargo bench --bench perf` from an exported contract:
# the Go peer (kafka-go, franz-go) with its module's pinned versions, and the
# Java peer (kafka-clients) with Maven. Writes OUT_DIR/go-peers and
# OUT_DIR/java-classpath (the classpath to run protobus.peers.Peer with).
#   build.sh CONTRACT_DIR OUT_DIR
set -euo pipefail
contract="$(cd "${1:?usage: build.sh CONTRACT_DIR OUT_DIR}" && pwd)"
out="${2:?usage: build.sh CONTRACT_DIR OUT_DIR}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$here/../.."
mkdir -p "$out"
out="$(cd "$out" && pwd)"

PATH="$("$root/scripts/go-env.sh"):$PATH"
"$root/examples/go/generate.sh" "$contract" "$here/go"
(cd "$here/go" && go build -o "$out/go-peers" .)

generated="$here/java/target/generated-sources/protobuf"
rm -rf "$generated"
mkdir -p "$generated"
# shellcheck disable=SC2046
protoc -I "$contract" --java_out="$generated" \
  $(cd "$contract" && find shop -name '*.proto' | sort) protobus/options.proto
(cd "$here/java" && mvn -q -B package dependency:build-classpath -Dmdep.outputFile="$out/java-deps" >&2)
echo "$here/java/target/classes:$(cat "$out/java-deps")" > "$out/java-classpath"
