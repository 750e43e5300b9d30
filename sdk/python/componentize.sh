#!/usr/bin/env bash
# Builds a backout plugin written in Python into a WebAssembly component.
#
#   bash sdk/python/componentize.sh APP_DIR OUT.wasm [MODULE]
#
# APP_DIR holds the app module (MODULE, default `app`, which defines `Step`)
# and any other modules and packages it imports. What is bundled is exactly:
# APP_DIR's top-level `*.py` files and package directories (those with an
# `__init__.py`, except `tests`), plus `backout_sdk` from beside this script,
# staged into a temporary directory; the component targets the world
# `plugin-wasi` of the repository's `wit/`. Nothing from the machine's own
# site-packages is bundled.
#
# componentize-py comes from sdk/python/setup.sh (run by tests/setup.sh).
set -euo pipefail

if [ $# -lt 2 ] || [ $# -gt 3 ]; then
  echo "usage: $0 APP_DIR OUT.wasm [MODULE]" >&2
  exit 2
fi
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
app=$(cd "$1" && pwd)
out=$2
module=${3:-app}
case "$out" in /*) ;; *) out="$PWD/$out" ;; esac

stage=$(mktemp -d "${TMPDIR:-/tmp}/backout-py.XXXXXX")
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage/src" "$stage/venv/lib/python3/site-packages"
cp "$app"/*.py "$stage/src/"
for dir in "$app"/*/; do
  name=$(basename "$dir")
  if [ -f "$dir/__init__.py" ] && [ "$name" != tests ]; then
    cp -r "$dir" "$stage/src/$name"
  fi
done
cp -r "$here/backout_sdk" "$stage/src/backout_sdk"
find "$stage/src" -name __pycache__ -prune -exec rm -rf {} +

# `python3 -m componentize_py` does not work (the package has no __main__),
# and a freshly installed `componentize-py` script may not be on PATH yet
# (pyenv needs a rehash): call its entry point through the interpreter.
# VIRTUAL_ENV points at an empty site-packages so that componentize-py does
# not fall back to the interpreter's own.
VIRTUAL_ENV="$stage/venv" PYTHONDONTWRITEBYTECODE=1 python3 -c \
  'import sys; from componentize_py import script; sys.argv[0] = "componentize-py"; sys.exit(script())' \
  -q -d "$root/wit" -w plugin-wasi componentize "$module" -p "$stage/src" -o "$out"
