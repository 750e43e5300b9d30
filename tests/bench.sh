#!/usr/bin/env bash
# Regenerates the README's benchmark tables on this machine: backout against
# the shell scripts it replaces (tests/bench/run.py, side by side), then the
# cold/warm start of every plugin, `registry verify` against openssl (the
# bench binaries in host/benches and registry/benches), and instantiation
# under wasmtime's on-demand and pooling allocators (tests/bench/pooling, a
# crate of its own so the workspace's wasmtime keeps its features).
#
#   tests/bench.sh            release build, 273 MiB and 1 GiB databases, 5 pairs (about 10 minutes)
#   tests/bench.sh --quick    the debug build and the test build's plugins, small
#                             databases, 1 pair: checks that the benchmark runs (tests/run.sh does)
#
# Installs what it needs and lacks (sqlite3, curl, openssl) from Debian.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
for tool in sqlite3 curl openssl; do
  command -v "$tool" >/dev/null || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi

if [ "${1:-}" = "--quick" ]; then
  # What `cargo test` already built: the debug CLI and the release-built guests.
  cargo build --locked -q -p backout
  work=$(mktemp -d /tmp/backout-bench.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  python3 tests/bench/run.py --backout target/debug/backout --plugins target/guests/wasm32-wasip2/release \
    --pairs 1 --size 4 --medium 4 --big 8 --work "$work"
  exit 0
fi

cargo build --release --locked -p backout
cargo build --release --locked --target wasm32-wasip2 -p env-toggle -p sqlite-restore -p smoke-test
echo "== backout against the shell scripts (tests/bench/run.py)"
python3 tests/bench/run.py --backout target/release/backout --plugins target/wasm32-wasip2/release "$@"
echo "== cold and warm start of every plugin (host/benches/cold_start.rs)"
cargo bench --locked -p backout --bench cold_start
echo "== registry verify against openssl dgst -sha256 (registry/benches/verify.rs)"
cargo bench --locked -p backout-registry
echo "== instantiation: on-demand against the pooling allocator (tests/bench/pooling)"
cargo build --release --locked --manifest-path tests/bench/pooling/Cargo.toml --target-dir target/bench-pooling
guests=target/guests/wasm32-wasip2/release
target/bench-pooling/release/pooling-bench \
  "$guests"/{env_toggle,smoke_test,sqlite_restore,qdrant_snapshot,file_restore,release_switch,service_control}.wasm \
  target/guests/foreign/{maintenance_flag,webhook_notify,json_config}.wasm
