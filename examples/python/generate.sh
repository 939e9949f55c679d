#!/usr/bin/env bash
# Generates Python classes and gRPC stubs for an exported Protobus contract
# into ./gen:
#   protobus contract export --out contract
#   ./generate.sh contract
# Needs a Python with grpcio-tools (PYTHON, default python3;
# scripts/python-env.sh prepares one).
set -euo pipefail
contract="${1:?usage: generate.sh CONTRACT_DIR}"
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
rm -rf "$here/gen"
mkdir -p "$here/gen"
# shellcheck disable=SC2046
"${PYTHON:-python3}" -m grpc_tools.protoc -I "$contract" \
  --python_out="$here/gen" --grpc_python_out="$here/gen" \
  $(cd "$contract" && find . -name '*.proto' | sed 's|^\./||' | sort)
