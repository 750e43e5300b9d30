#!/usr/bin/env bash
# The test command: installs what a fresh machine lacks, then runs every test
# in the workspace (cargo builds the plugins for wasm32-wasip2 itself, in
# tests/build.rs).
set -euo pipefail
cd "$(dirname "$0")/.."
tests/setup.sh
cargo test --workspace --locked "$@"
