#!/usr/bin/env bash
# Builds the maintenance-flag component:
#
#   bash sdk/c/examples/maintenance-flag/build.sh OUT.wasm
#
# tests/build.rs runs it from the repository root; any directory works. The
# toolchain comes from sdk/c/setup.sh; sdk/c/build-plugin.sh says what runs.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ $# -ne 1 ]; then
  echo "usage: $0 OUT.wasm" >&2
  exit 2
fi
exec bash "$here/../../build-plugin.sh" "$1" "$here/maintenance-flag.c"
