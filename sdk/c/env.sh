# The C toolchain for backout plugins: versions and where each piece lives.
# Sourced by sdk/c/setup.sh (which installs them) and sdk/c/build-plugin.sh
# (which uses them). Run from the repository root so that `rustc` is the
# toolchain pinned in rust-toolchain.toml.

# C bindings for wit/step.wit: the `wit-bindgen c` generator (crate
# wit-bindgen-c), built from sdk/c/tools/wit-bindgen-c into ~/.cargo/bin.
BACKOUT_C_WIT_BINDGEN_VERSION=0.61.1
WIT_BINDGEN_C=${WIT_BINDGEN_C:-${CARGO_HOME:-$HOME/.cargo}/bin/backout-wit-bindgen-c}

# The WASI preview1 adapter, reactor flavour, of the wasmtime the host embeds
# (crate wasi-preview1-component-adapter-provider), checked by digest.
BACKOUT_C_ADAPTER_VERSION=48.0.8
BACKOUT_C_ADAPTER_SHA256=134b86dc09c6b62077f2307b96fa8b83b94dc86737bc705ac3dbe27cb107b1f9
BACKOUT_C_SDK=${BACKOUT_C_SDK:-${XDG_DATA_HOME:-$HOME/.local/share}/backout-c-sdk}
BACKOUT_C_ADAPTER=$BACKOUT_C_SDK/wasi_snapshot_preview1.reactor-$BACKOUT_C_ADAPTER_VERSION.wasm

# The linker: wasm-component-ld (wasm-ld, then componentize with the adapter)
# and rust-lld acting as wasm-ld, both shipped with every Rust toolchain.
_backout_rustc=${RUSTC:-rustc}
_backout_rust_bin=$("$_backout_rustc" --print sysroot)/lib/rustlib/$("$_backout_rustc" -vV | sed -n 's/^host: //p')/bin
WASM_COMPONENT_LD=${WASM_COMPONENT_LD:-$_backout_rust_bin/wasm-component-ld}
WASM_LD=${WASM_LD:-$_backout_rust_bin/gcc-ld/wasm-ld}
unset _backout_rustc _backout_rust_bin

# clang-16 and wasi-libc (Debian packages clang-16, llvm-16, wasi-libc).
CLANG=${CLANG:-clang-16}
WASI_LIBC=${WASI_LIBC:-/usr/lib/wasm32-wasi}
