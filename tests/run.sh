#!/usr/bin/env bash
# The test command: installs what a fresh machine lacks, runs every test in the
# workspace (cargo builds the plugins for wasm32-wasip2 itself, in
# tests/build.rs), runs the demo (tests/demo.sh), checks that the benchmarks
# still run (tests/bench.sh --quick: small files, one pair, no figures kept),
# runs the fleet tests (tests/fleet/: a rolling rollback through the Ansible
# collection across four network-namespace hosts, ansible-test sanity, the
# Kubernetes manifests against their schemas), then fuzzes every parser for
# a bounded time (tests/fuzz/run.sh: FUZZ_SECONDS per target, 60 by default).
#
#   ./tests/run.sh               everything, as CI runs it
#   ./tests/run.sh -p backout    arguments go to `cargo test`; the demo, the bench check, the fleet tests and the fuzz run are skipped
#   FUZZ_SECONDS=0 ./tests/run.sh   every test, no fuzzing
set -euo pipefail
cd "$(dirname "$0")/.."
tests/setup.sh
# The fuzz targets are a workspace of their own with their own Cargo.lock:
# a dependency added to a crate they use must be locked there too. Checked
# first, so a stale lock fails in seconds rather than after the tests.
if ! cargo metadata --locked --format-version 1 --manifest-path tests/fuzz/Cargo.toml >/dev/null; then
  echo "tests/fuzz/Cargo.lock is out of date: run \`cargo tree --manifest-path tests/fuzz/Cargo.toml\` and commit it" >&2
  exit 1
fi
cargo test --workspace --locked "$@"
if [ "$#" -eq 0 ]; then
  # The demo (a full rollback against a real local service) must keep working.
  tests/demo.sh
  tests/bench.sh --quick
  tests/fleet/run.sh
  tests/fleet/sanity.sh
  tests/fleet/kubernetes.sh
  if [ "${FUZZ_SECONDS:-60}" != 0 ]; then
    tests/fuzz/run.sh
  fi
fi
