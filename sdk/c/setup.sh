#!/usr/bin/env bash
# Installs what C plugins need (sdk/c/README.md). Idempotent, and quick when
# everything is there; tests/setup.sh runs it on every CI machine.
#
#   clang-16, llvm-16, wasi-libc   apt (Debian 12)          compile C for wasm32-wasi
#   backout-wit-bindgen-c          ~/.cargo/bin              C bindings for wit/step.wit
#   preview1 reactor adapter       ~/.local/share/backout-c-sdk/   (BACKOUT_C_SDK)
#   wasm-component-ld, wasm-ld     the Rust toolchain (nothing to install)
set -euo pipefail
cd "$(dirname "$0")/../.."
. sdk/c/env.sh

# clang-16 and the WASI libc (tests/setup.sh installs them too).
if ! command -v "$CLANG" >/dev/null || [ ! -e /usr/include/wasm32-wasi/stdio.h ] || [ ! -e "$WASI_LIBC/libc.a" ]; then
  sudo=""
  if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q
  $sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q clang-16 llvm-16 wasi-libc
fi

# The linker ships with the Rust toolchain.
for tool in "$WASM_COMPONENT_LD" "$WASM_LD"; do
  if [ ! -x "$tool" ]; then
    echo "sdk/c/setup.sh: $tool is missing; the Rust toolchain should ship it (rustup component add rust-src will not help; reinstall the toolchain)" >&2
    exit 1
  fi
done

# The C bindings generator: the wit-bindgen-c crate behind a small CLI (30
# crates to compile instead of the 135 of `cargo install wit-bindgen-cli`).
if [ "$("$WIT_BINDGEN_C" --version 2>/dev/null || true)" != "backout-wit-bindgen-c $BACKOUT_C_WIT_BINDGEN_VERSION" ]; then
  # (a path install builds in the package's own target dir unless told otherwise)
  CARGO_TARGET_DIR="$PWD/target/sdk-c-tools" cargo install --locked --force --path sdk/c/tools/wit-bindgen-c
fi

# The preview1 reactor adapter, from the crate that ships it, checked by digest.
if ! echo "$BACKOUT_C_ADAPTER_SHA256  $BACKOUT_C_ADAPTER" | sha256sum --check --status 2>/dev/null; then
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  mkdir "$tmp/src"
  : >"$tmp/src/lib.rs"
  cat >"$tmp/Cargo.toml" <<TOML
[package]
name = "fetch-adapter"
version = "0.0.0"
edition = "2021"
publish = false

[dependencies]
wasi-preview1-component-adapter-provider = "=$BACKOUT_C_ADAPTER_VERSION"

[workspace]
TOML
  cargo vendor --quiet --versioned-dirs --manifest-path "$tmp/Cargo.toml" "$tmp/vendor" >/dev/null
  fetched="$tmp/vendor/wasi-preview1-component-adapter-provider-$BACKOUT_C_ADAPTER_VERSION/artefacts/wasi_snapshot_preview1.reactor.wasm"
  if ! echo "$BACKOUT_C_ADAPTER_SHA256  $fetched" | sha256sum --check --status; then
    echo "sdk/c/setup.sh: the adapter in wasi-preview1-component-adapter-provider $BACKOUT_C_ADAPTER_VERSION has an unexpected sha256" >&2
    exit 1
  fi
  mkdir -p "$BACKOUT_C_SDK"
  cp "$fetched" "$BACKOUT_C_ADAPTER.tmp"
  mv "$BACKOUT_C_ADAPTER.tmp" "$BACKOUT_C_ADAPTER"
fi
