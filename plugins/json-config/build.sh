#!/usr/bin/env bash
# Builds the json-config plugin into a WebAssembly component:
#   plugins/json-config/build.sh OUT.wasm
# tests/build.rs runs it from the repository root; it works from anywhere.
# The plugin's modules and the SDK (sdk/js/backout-sdk.js) are copied into one
# staging directory, so `import … from './backout-sdk.js'` resolves as it
# does in a project made by `backout new --lang js`.
set -euo pipefail
out=$(realpath -m "${1:?usage: build.sh OUT.wasm}")
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

bash "$root/sdk/js/setup.sh"   # componentize-js, pinned; quick when installed
componentize="$root/sdk/js/node_modules/.bin/componentize-js"

# A build takes ~20 s: skip it when nothing that goes into the component
# changed since OUT was built (its inputs' digest is kept in OUT.inputs).
inputs=$(
  cd "$root"
  { find plugins/json-config -maxdepth 1 -type f -name '*.js'; echo plugins/json-config/build.sh
    echo sdk/js/backout-sdk.js; echo sdk/js/package-lock.json; find wit -type f; } | LC_ALL=C sort | xargs sha256sum | sha256sum | cut -d' ' -f1
)
if [ -f "$out" ] && [ "$(cat "$out.inputs" 2>/dev/null)" = "$inputs" ]; then
  exit 0
fi

stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp "$here"/*.js "$root/sdk/js/backout-sdk.js" "$stage/"
# World `plugin-wasi`: backout's step + host, files and outgoing HTTP. The
# engine's stdio, random, fetch() and fetch-event features are left out; the
# `clocks` feature stays (without it `Date.now()` is frozen at build time).
(cd "$stage" && "$componentize" plugin.js --wit "$root/wit" --world-name plugin-wasi \
  -d stdio random http fetch-event -o "$stage/plugin.wasm")
mkdir -p "$(dirname "$out")"
mv "$stage/plugin.wasm" "$out"
echo "$inputs" > "$out.inputs"
