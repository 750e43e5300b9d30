#!/usr/bin/env bash
# Builds a backout plugin written in C into a WebAssembly component:
#
#   bash sdk/c/build-plugin.sh OUT.wasm SOURCE.c [SOURCE.c…] [-- CFLAGS…]
#
# 1. C bindings for the world `plugin-wasi` of wit/step.wit (plugin_wasi.h,
#    plugin_wasi.c, and plugin_wasi_component_type.o, which carries the
#    world's types for step 3);
# 2. clang-16 compiles the sources and the bindings for wasm32-wasi;
# 3. wasm-component-ld links them with wasi-libc as a reactor (rust-lld as
#    wasm-ld) and turns the module into a component, adapting its WASI
#    preview1 imports with wasmtime 48's preview1 reactor adapter.
#
# The tools come from sdk/c/setup.sh. Any working directory will do.
set -euo pipefail
if [ $# -lt 2 ]; then
  echo "usage: $0 OUT.wasm SOURCE.c [SOURCE.c…] [-- CFLAGS…]" >&2
  exit 2
fi
sdk=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$sdk/../.." && pwd)
out=$(realpath -m "$1")
shift
sources=()
while [ $# -gt 0 ] && [ "$1" != "--" ]; do
  sources+=("$(realpath "$1")")
  shift
done
[ $# -gt 0 ] && shift
cflags=("$@")

cd "$root"
. sdk/c/env.sh
if [ ! -x "$WIT_BINDGEN_C" ] || [ ! -e "$BACKOUT_C_ADAPTER" ]; then
  echo "$0: the C toolchain is not installed; run sdk/c/setup.sh" >&2
  exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

"$WIT_BINDGEN_C" wit --world plugin-wasi --out-dir "$work" 2>/dev/null

objects=()
for src in "${sources[@]}"; do
  obj="$work/$(basename "${src%.c}").o"
  "$CLANG" --target=wasm32-wasi -O2 -Wall -Wextra -Werror "${cflags[@]}" -I "$work" -c "$src" -o "$obj"
  objects+=("$obj")
done
"$CLANG" --target=wasm32-wasi -O2 -c "$work/plugin_wasi.c" -o "$work/plugin_wasi.o"

mkdir -p "$(dirname "$out")"
"$WASM_COMPONENT_LD" --wasm-ld-path "$WASM_LD" --adapt "wasi_snapshot_preview1=$BACKOUT_C_ADAPTER" \
  -m wasm32 -L "$WASI_LIBC" "$WASI_LIBC/crt1-reactor.o" --entry _initialize \
  "${objects[@]}" "$work/plugin_wasi.o" "$work/plugin_wasi_component_type.o" -lc \
  --strip-debug -o "$out"
