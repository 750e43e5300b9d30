#!/usr/bin/env bash
# Builds this plugin into a WebAssembly component:
#
#   bash build.sh [OUT.wasm]        (default: {{name}}.wasm beside this script)
#
# It bundles every top-level `*.py` file and package directory here (not
# `tests/`) plus the backout Python SDK (`backout_sdk`), and targets the world
# `plugin-wasi` of backout's WIT contract. It finds the contract and the SDK,
# in this order:
#   1. in this directory: `wit/step.wit` (with `wit/deps/`) and `backout_sdk/`;
#   2. in a backout checkout named by $BACKOUT_HOME (`wit/`, `sdk/python/backout_sdk/`);
#   3. in a backout checkout above this directory.
# Needs componentize-py 0.25.1: `pip install componentize-py==0.25.1` (or run
# backout's `sdk/python/setup.sh`).
#
# test.sh sources this file for `locate_sdk`.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

# Sets WIT_DIR and SDK_DIR (the directory that holds `backout_sdk/`).
locate_sdk() {
  if [ -f "$here/wit/step.wit" ] && [ -d "$here/backout_sdk" ]; then
    WIT_DIR=$here/wit
    SDK_DIR=$here
    return
  fi
  local dir
  for dir in ${BACKOUT_HOME:+"$BACKOUT_HOME"} "$here"/.. "$here"/../.. "$here"/../../.. "$here"/../../../..; do
    if [ -f "$dir/wit/step.wit" ] && [ -d "$dir/sdk/python/backout_sdk" ]; then
      WIT_DIR=$(cd "$dir/wit" && pwd)
      SDK_DIR=$(cd "$dir/sdk/python" && pwd)
      return
    fi
  done
  echo "error: cannot find backout's WIT contract and Python SDK" >&2
  echo "  hint: set BACKOUT_HOME to a backout checkout, or copy its wit/ and sdk/python/backout_sdk/ here" >&2
  return 1
}

build() {
  local out=${1:-$here/{{name}}.wasm}
  case "$out" in /*) ;; *) out="$PWD/$out" ;; esac
  locate_sdk
  if ! python3 -c 'import componentize_py' 2>/dev/null; then
    echo "error: componentize-py is not installed" >&2
    echo "  hint: pip install componentize-py==0.25.1" >&2
    return 1
  fi

  local stage name dir
  stage=$(mktemp -d "${TMPDIR:-/tmp}/{{name}}-build.XXXXXX")
  mkdir -p "$stage/src" "$stage/venv/lib/python3/site-packages"
  cp "$here"/*.py "$stage/src/"
  for dir in "$here"/*/; do
    name=$(basename "$dir")
    if [ -f "$dir/__init__.py" ] && [ "$name" != tests ] && [ "$name" != backout_sdk ]; then
      cp -r "$dir" "$stage/src/$name"
    fi
  done
  cp -r "$SDK_DIR/backout_sdk" "$stage/src/backout_sdk"
  find "$stage/src" -name __pycache__ -prune -exec rm -rf {} +

  # `python3 -m componentize_py` does not work (no __main__), and a fresh
  # install's `componentize-py` script may not be on PATH yet: call the entry
  # point through the interpreter. VIRTUAL_ENV points at an empty
  # site-packages so nothing from the machine's own is bundled.
  local status=0
  VIRTUAL_ENV="$stage/venv" PYTHONDONTWRITEBYTECODE=1 python3 -c \
    'import sys; from componentize_py import script; sys.argv[0] = "componentize-py"; sys.exit(script())' \
    -q -d "$WIT_DIR" -w plugin-wasi componentize app -p "$stage/src" -o "$out" || status=$?
  rm -rf "$stage"
  if [ "$status" -ne 0 ]; then
    echo "error: componentize-py failed ($status)" >&2
    return "$status"
  fi
  echo "built $out"
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  build "$@"
fi
