#!/usr/bin/env bash
# Installs what a fresh machine lacks to build and test backout. Idempotent and
# quick when everything is already there; called by tests/run.sh, tests/demo.sh
# (with --rust-only: the demo's plugins are all Rust) and .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."

toolchain=$(sed -n 's/^channel = "\(.*\)"/\1/p' rust-toolchain.toml)

# The pinned toolchain: use it if rustup has it; otherwise, if the default
# toolchain is that very version, register it under the pinned name.
if ! rustup toolchain list | grep -q "^${toolchain}-"; then
  if rustc +stable --version 2>/dev/null | grep -q "^rustc ${toolchain} "; then
    rustup toolchain link "${toolchain}" "$(rustc +stable --print sysroot)"
  else
    rustup toolchain install "${toolchain}" --profile minimal --component rustfmt,clippy
  fi
fi

# Plugins are WebAssembly components built for wasm32-wasip2.
if ! rustup target list --installed | grep -q '^wasm32-wasip2$'; then
  rustup target add wasm32-wasip2
fi
for component in rustfmt clippy; do
  if ! rustup component list --installed | grep -q "^${component}"; then
    rustup component add "${component}"
  fi
done

# The sqlite-restore plugin compiles SQLite's C source for wasm32-wasip2: a
# wasm-capable clang and llvm-ar, and the WASI libc headers (.cargo/config.toml
# points the build at them).
if ! command -v clang-16 >/dev/null || ! command -v llvm-ar-16 >/dev/null || [ ! -e /usr/include/wasm32-wasi/stdio.h ]; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q clang-16 llvm-16 wasi-libc
fi

# Plugins in other languages: each SDK installs its own toolchain
# (componentize-py, componentize-js, wit-bindgen for C) when it is missing;
# the fuzz targets need nightly Rust and cargo-fuzz; the report's browser test
# needs Chromium. `--rust-only` (the demo) skips them.
if [ "${1:-}" = "--rust-only" ]; then
  exit 0
fi
# The run report is tested in a real browser (tests/e2e/report.rs): headless
# Chromium, driven through chromedriver's WebDriver protocol. Debian's own
# packages, so the browser and its driver always match.
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends chromium chromium-driver
fi
# `backout completions` and `backout man` are tested in the real programs
# (tests/e2e/completions.rs): bash loads the completion script, zsh and fish
# check theirs, and man-db renders the manual pages with groff. Debian's
# packages, a few MB.
if ! command -v zsh >/dev/null || ! command -v fish >/dev/null || ! command -v man >/dev/null || ! command -v groff >/dev/null; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends zsh fish man-db groff-base
fi

bash tests/fuzz/setup.sh
# The fleet tests (tests/fleet/): openssh-server, iproute2 and shellcheck
# from Debian, ansible-core and kubernetes-validate from PyPI in a venv, and
# ansible-test's sanity virtualenvs.
bash integrations/ansible/setup.sh >/dev/null
for lang_setup in sdk/*/setup.sh; do
  if [ -e "$lang_setup" ]; then
    bash "$lang_setup"
  fi
done
