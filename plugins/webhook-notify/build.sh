#!/usr/bin/env bash
# Builds the webhook-notify component (Python, with sdk/python/backout_sdk):
#
#   bash plugins/webhook-notify/build.sh OUT.wasm
#
# tests/build.rs runs it from the repository root; any directory works.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [ $# -ne 1 ]; then
  echo "usage: $0 OUT.wasm" >&2
  exit 2
fi
exec bash "$here/../../sdk/python/componentize.sh" "$here" "$1" app
