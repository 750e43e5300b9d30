#!/usr/bin/env bash
# Installs what the fuzz targets need when it is missing: a nightly toolchain
# (libFuzzer's coverage instrumentation needs nightly rustc) and cargo-fuzz.
# Idempotent and quick when both are there; called by tests/setup.sh (unless
# --rust-only) and by tests/fuzz/run.sh. The main workspace never needs nightly.
set -euo pipefail

cargo_fuzz_version=0.13.2

if ! rustup toolchain list | grep -q '^nightly-'; then
  rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version 2>/dev/null | grep -qx "cargo-fuzz ${cargo_fuzz_version}"; then
  cargo +nightly install cargo-fuzz --locked --version "${cargo_fuzz_version}"
fi
