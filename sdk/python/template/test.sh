#!/usr/bin/env bash
# Tests this plugin: its native unit tests, then the built component through
# the real backout CLI (`$BACKOUT`, default `backout`) in a temporary
# registry and state directory: `inspect`, `registry add`, and `plan` and
# `run` of example.toml on a temporary directory. Exits non-zero on the first
# failure.
#
#   bash test.sh
#   BACKOUT=/path/to/backout bash test.sh
set -euo pipefail
cd "$(dirname "$0")"
# shellcheck source=build.sh
source ./build.sh

backout=${BACKOUT:-backout}
work=$(mktemp -d "${TMPDIR:-/tmp}/{{name}}-test.XXXXXX")
trap 'rm -rf "$work"' EXIT
# An empty registry, state directory and trust file of its own: the test
# neither sees nor changes the operator's.
export BACKOUT_REGISTRY=$work/registry BACKOUT_STATE_DIR=$work/state BACKOUT_TRUST=$work/trust.toml
printf 'format = 1\n' >"$work/trust.toml"

fail() {
  echo "FAIL: $1" >&2
  [ $# -gt 1 ] && printf '%s\n' "$2" >&2
  exit 1
}

expect() { # TEXT NEEDLE WHAT
  case "$1" in *"$2"*) ;; *) fail "$3: \`$2\` not in the output" "$1" ;; esac
}

echo "== unit tests"
locate_sdk
PYTHONPATH=$SDK_DIR PYTHONDONTWRITEBYTECODE=1 python3 -m unittest discover -s tests || fail "unit tests"

echo "== build"
build "$work/{{name}}.wasm"

echo "== backout inspect"
out=$("$backout" inspect "$work/{{name}}.wasm") || fail "backout inspect" "$out"
expect "$out" "plugin    {{name}} 0.1.0" "inspect"
expect "$out" "files: read-write" "inspect"

echo "== backout registry add"
out=$("$backout" registry add "$work/{{name}}.wasm" 2>&1) || fail "backout registry add" "$out"

mkdir "$work/app"
printf 'hello\n' >"$work/app/greeting.txt"

echo "== backout plan example.toml"
out=$("$backout" plan example.toml --var "dir=$work/app" 2>&1) || fail "backout plan" "$out"
expect "$out" "replace /data/greeting.txt" "plan"
[ "$(cat "$work/app/greeting.txt")" = hello ] || fail "plan changed greeting.txt"

echo "== backout run example.toml"
out=$("$backout" run --yes example.toml --var "dir=$work/app" 2>&1) || fail "backout run" "$out"
expect "$out" "Run succeeded" "run"
[ "$(cat "$work/app/greeting.txt")" = "hello from {{name}}" ] || fail "run did not replace greeting.txt" "$out"
copies=("$work"/app/greeting.txt.backout-*.bak)
[ -f "${copies[0]}" ] && [ "$(cat "${copies[0]}")" = hello ] || fail "no safety copy with the old contents" "$out"

echo "ok: {{name}} builds, describes itself, plans and runs"
