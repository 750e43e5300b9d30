#!/usr/bin/env bash
# The bounded fuzz run CI does after ./tests/run.sh: builds every target once,
# then runs each for FUZZ_SECONDS (60 by default), FUZZ_JOBS (2) at a time.
# Exits non-zero if any target finds a crash, naming the target and the input.
#
#   tests/fuzz/run.sh                 every target
#   FUZZ_SECONDS=600 tests/fuzz/run.sh dotenv
#
# Inputs: tests/fuzz/corpus/<target> (grown by each run, not committed), the
# committed seeds/<target> and regressions/<target>, and the repository files
# that also seed a target (`repository_seeds`, the same as `TARGETS` in
# properties/src/lib.rs; properties/tests/regressions.rs checks they agree).
set -euo pipefail
cd "$(dirname "$0")/../.."
bash tests/fuzz/setup.sh

fuzz=tests/fuzz
seconds="${FUZZ_SECONDS:-60}"
jobs="${FUZZ_JOBS:-2}"

repository_seeds() {
  case "$1" in
    runbook) echo "tests/e2e/golden tests/demo" ;;
    template) echo "tests/e2e/golden tests/demo" ;;
  esac
}

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo +nightly fuzz list --fuzz-dir "$fuzz")
fi

# No sanitizer: the code under test is safe Rust (every crate of ours is
# `#![forbid(unsafe_code)]`), so AddressSanitizer would find nothing a panic
# does not, and would double the build time. Debug assertions stay on, so an
# arithmetic overflow is a crash too.
build=(-s none --debug-assertions --codegen-units 16 --fuzz-dir "$fuzz")
cargo +nightly fetch --locked --manifest-path "$fuzz/Cargo.toml" --quiet
cargo +nightly fuzz build "${build[@]}"

logs="$fuzz/target/logs"
rm -rf "$logs"
mkdir -p "$logs"

# One target, its output in $logs/<target>.log, its exit status in .status.
fuzz_one() {
  local target="$1"
  local inputs=("$fuzz/seeds/$target")
  [ -d "$fuzz/regressions/$target" ] && inputs+=("$fuzz/regressions/$target")
  # shellcheck disable=SC2207 # directory names without spaces
  inputs+=($(repository_seeds "$target"))
  mkdir -p "$fuzz/corpus/$target" "$fuzz/artifacts/$target"
  local status=0
  "$fuzz/target/x86_64-unknown-linux-gnu/release/$target" \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$fuzz/artifacts/$target/" \
    "$fuzz/corpus/$target" "${inputs[@]}" >"$logs/$target.log" 2>&1 || status=$?
  echo "$status" >"$logs/$target.status"
}

echo "fuzzing ${#targets[@]} targets for ${seconds}s each, ${jobs} at a time"
for target in "${targets[@]}"; do
  while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do
    wait -n || true
  done
  fuzz_one "$target" &
done
wait

failed=0
for target in "${targets[@]}"; do
  status=$(cat "$logs/$target.status")
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$logs/$target.log")
  if [ "$status" = 0 ]; then
    echo "ok      $target (${runs:-?} inputs)"
    continue
  fi
  failed=1
  echo "FAILED  $target (exit status $status; all of it in $logs/$target.log):"
  if grep -q 'panicked at' "$logs/$target.log"; then
    sed -n '/panicked at/,/^stack backtrace:/p' "$logs/$target.log" | grep -v '^stack backtrace:' | head -n 20 | sed 's/^/    /'
  fi
  grep -E '^(==[0-9]+== ERROR|SUMMARY): ' "$logs/$target.log" | sed 's/^/    /' || true
  sed -n 's/.*Test unit written to \(.*\)$/\1/p' "$logs/$target.log" | while read -r input; do
    echo "  input:  $input"
    echo "  replay: cargo +nightly fuzz run ${build[*]} $target $input"
    echo "  then fix the bug (with a unit test) and keep the input in $fuzz/regressions/$target/"
  done
done
exit "$failed"
