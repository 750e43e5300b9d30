#!/usr/bin/env bash
# Tests {{name}} through the real host: builds the component, checks what
# `backout inspect` says, registers it in a throwaway registry, plans
# example.toml against a temp directory (which must change nothing), then runs
# it and checks the file and its safety copy. Exits non-zero on any failure.
# BACKOUT=/path/to/backout picks the binary (default: `backout` on PATH).
set -euo pipefail
cd "$(dirname "$0")"
backout="${BACKOUT:-backout}"
fail() {
  echo "FAIL: $*" >&2
  exit 1
}

bash ./build.sh {{name}}.wasm

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
export BACKOUT_REGISTRY="$work/registry" BACKOUT_STATE_DIR="$work/state"

inspect=$("$backout" inspect {{name}}.wasm) || fail "backout inspect {{name}}.wasm failed"
grep -q "^plugin *{{name}} 0.1.0" <<<"$inspect" || fail "inspect does not name {{name}} 0.1.0:
$inspect"
grep -q "^exports *backout:step/step@0.2.0" <<<"$inspect" || fail "the component does not export backout:step/step@0.2.0"

"$backout" registry add {{name}}.wasm >/dev/null || fail "backout registry add failed"

mkdir "$work/app"
printf 'feature = on\n' > "$work/app/app.conf"
plan=$("$backout" plan example.toml --var "dir=$work/app") || fail "backout plan example.toml failed"
grep -q "replace /app/app.conf" <<<"$plan" || fail "the plan does not say it replaces /app/app.conf:
$plan"
[ "$(cat "$work/app/app.conf")" = "feature = on" ] || fail "plan changed /app/app.conf"

"$backout" run --yes example.toml --var "dir=$work/app" >/dev/null || fail "backout run example.toml failed"
[ "$(cat "$work/app/app.conf")" = "feature = off" ] || fail "run did not write the new contents"
copies=("$work"/app/app.conf.backout-*.bak)
[ -f "${copies[0]}" ] && [ "$(cat "${copies[0]}")" = "feature = on" ] || fail "run kept no safety copy of the old contents"

echo "ok: {{name}} builds, and backout inspects, plans and runs it"
