#!/usr/bin/env bash
# Tests {{name}}: the logic natively (`cargo test`), then the component
# through the real host in a throwaway registry and state directory:
# `inspect`, `registry add`, `plan` of example.toml against a temp directory
# (which must change nothing), then `run`, checking the file and its safety
# copy. Exits non-zero on the first failure.
# BACKOUT=/path/to/backout picks the binary (default: `backout` on PATH).
set -euo pipefail
cd "$(dirname "$0")"
backout="${BACKOUT:-backout}"
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

cargo test --quiet
cargo build --quiet --release --target wasm32-wasip2
wasm="${CARGO_TARGET_DIR:-target}/wasm32-wasip2/release/{{module}}.wasm"

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export BACKOUT_REGISTRY="$work/registry" BACKOUT_STATE_DIR="$work/state" BACKOUT_TRUST="$work/trust.toml"
printf 'format = 1\n' > "$work/trust.toml"

inspect=$("$backout" inspect "$wasm") || fail "backout inspect failed"
grep -q "{{name}}" <<<"$inspect" || fail "inspect does not name {{name}}:
$inspect"
"$backout" registry add "$wasm" >/dev/null || fail "backout registry add failed"

mkdir "$work/app"
printf 'feature = on\n' > "$work/app/app.conf"
plan=$("$backout" plan example.toml --var "dir=$work/app") || fail "backout plan example.toml failed"
grep -q "replace /app/app.conf" <<<"$plan" || fail "the plan does not say it replaces /app/app.conf:
$plan"
[ "$(cat "$work/app/app.conf")" = "feature = on" ] || fail "plan changed /app/app.conf"

"$backout" run --yes example.toml --var "dir=$work/app" >/dev/null || fail "backout run example.toml failed"
[ "$(cat "$work/app/app.conf")" = "feature = off" ] || fail "run did not write the new contents"
copies=("$work"/app/app.conf.backout-*.bak)
[ -f "${copies[0]}" ] && [ "$(cat "${copies[0]}")" = "feature = on" ] || fail "run kept no safety copy"

echo "ok: {{name}} builds, its tests pass, and backout inspects, plans and runs it"
