#!/usr/bin/env bash
# The demo: builds backout and the env-toggle plugin from source, fills a
# registry in a temp directory, and runs a real env-toggle runbook on a real
# .env file (CRLF line endings, comments, quotes, no final newline), showing
# the plan, the run, and exactly which bytes changed.
set -euo pipefail
cd "$(dirname "$0")/.."
tests/setup.sh

echo "==> building the env-toggle plugin (wasm32-wasip2 component) and backout"
cargo build --locked --release --target wasm32-wasip2 -p env-toggle
cargo build --locked -p backout
backout="$PWD/target/debug/backout"
plugin="$PWD/target/wasm32-wasip2/release/env_toggle.wasm"

work=$(mktemp -d "${TMPDIR:-/tmp}/backout-demo.XXXXXX")
export BACKOUT_REGISTRY="$work/registry" BACKOUT_STATE_DIR="$work/state"
mkdir -p "$work/app"
cp tests/demo/app.env "$work/app/.env"
chmod 600 "$work/app/.env"

echo; echo "==> backout registry add $plugin"
"$backout" registry add "$plugin"

echo; echo "==> backout plan tests/demo/feature-rollback.toml --var app_dir=$work/app"
"$backout" plan tests/demo/feature-rollback.toml --var "app_dir=$work/app"

echo; echo "==> backout run --yes tests/demo/feature-rollback.toml --var app_dir=$work/app"
"$backout" run --yes tests/demo/feature-rollback.toml --var "app_dir=$work/app"

echo; echo "==> what changed in $work/app/.env (every other byte is kept)"
diff --text tests/demo/app.env "$work/app/.env" | sed "s/\r$/\\\\r/" || true
echo; echo "==> files in $work/app"
ls -la "$work/app"
echo; echo "The registry, journal and app directory are in $work"
