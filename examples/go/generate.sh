#!/usr/bin/env bash
# Generates Go code for an exported Protobus contract into the gen directory
# of a Go module (this one unless MODULE_DIR is given):
#   protobus contract export --out contract
#   ./generate.sh contract [MODULE_DIR]
# Needs protoc, protoc-gen-go and protoc-gen-go-grpc on PATH
# (scripts/go-env.sh installs them). The contract's files name no Go package,
# so each file's package is given here: shop/orders/v1/orders.proto becomes
# package ordersv1 at <module>/gen/shop/orders/v1.
set -euo pipefail
contract="${1:?usage: generate.sh CONTRACT_DIR [MODULE_DIR]}"
here="$(cd "${2:-$(dirname "${BASH_SOURCE[0]}")}" && pwd)"
module="$(cd "$here" && go list -m)"
files=$(cd "$contract" && find . -name '*.proto' | sed 's|^\./||' | sort)
mappings=()
for file in $files; do
  dir="$(dirname "$file")"
  parent="$(dirname "$dir")"
  package="$(basename "$dir")"
  if [ "$parent" != . ]; then package="$(basename "$parent")$package"; fi
  mappings+=("--go_opt=M$file=$module/gen/$dir;$package" "--go-grpc_opt=M$file=$module/gen/$dir;$package")
done
rm -rf "$here/gen"
mkdir -p "$here/gen"
# shellcheck disable=SC2086
protoc -I "$contract" \
  --go_out="$here/gen" --go_opt=module="$module/gen" \
  --go-grpc_out="$here/gen" --go-grpc_opt=module="$module/gen" \
  "${mappings[@]}" $files
