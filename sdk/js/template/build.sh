#!/usr/bin/env bash
# Builds the {{name}} component: ./build.sh [OUT.wasm] (default {{name}}.wasm).
# Installs componentize-js (pinned in package-lock.json) with `npm ci` the
# first time and whenever the lock changes; COMPONENTIZE_JS=/path/to/componentize-js
# uses one that is already installed instead.
set -euo pipefail
out=$(realpath -m "${1:-{{name}}.wasm}")
cd "$(dirname "$0")"

componentize="${COMPONENTIZE_JS:-}"
if [ -z "$componentize" ]; then
  want=$(sha256sum package-lock.json | cut -d' ' -f1)
  if [ "$(cat node_modules/.backout-lock-sha256 2>/dev/null)" != "$want" ] || [ ! -x node_modules/.bin/componentize-js ]; then
    npm ci --no-audit --no-fund --loglevel=error
    echo "$want" > node_modules/.backout-lock-sha256
  fi
  componentize=node_modules/.bin/componentize-js
fi

# World `plugin-wasi` (wit/step.wit): backout's step and host interfaces, files
# and outgoing HTTP. Left out: the engine's stdio, random and fetch() (drop
# `http` from the list to use fetch(); the runbook must grant `net` too).
# Keep `clocks`: without it Date.now() is frozen at build time.
"$componentize" plugin.js --wit wit --world-name plugin-wasi \
  -d stdio random http fetch-event -o "$out"
echo "built $out"
