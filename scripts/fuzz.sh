#!/usr/bin/env bash
# Builds every cargo-fuzz target in fuzz/ and runs each for a bounded time (docs/fuzzing.md).
#
#   scripts/fuzz.sh            # 10 seconds a target, as CI runs it
#   scripts/fuzz.sh 600        # ten minutes a target, by hand
#   scripts/fuzz.sh 60 config  # only the named targets
#
# The committed seeds in fuzz/corpus/<target>/ are read, never written: what a run finds goes
# to fuzz/corpus-run/<target>/ (ignored by git, kept between runs so longer runs build on it).
# A crash or failed property leaves its input in fuzz/artifacts/<target>/ and fails the script.
#
# cargo-fuzz needs nightly -Z flags; RUSTC_BOOTSTRAP=1 lets the stable toolchain accept them.
# FUZZ_SANITIZER=none skips AddressSanitizer (faster, but finds less in unsafe code).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-10}
shift || true
sanitizer=${FUZZ_SANITIZER:-address}
export RUSTC_BOOTSTRAP=1

fuzz() { cargo fuzz "$1" --fuzz-dir fuzz "${@:2}"; }

if [ "$#" -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(fuzz list)
fi

echo "== building ${#targets[@]} fuzz targets (sanitizer: $sanitizer)"
fuzz build --sanitizer "$sanitizer"

logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
failed=()
for target in "${targets[@]}"; do
  echo "== $target: ${seconds}s"
  mkdir -p "fuzz/corpus-run/$target"
  # New inputs go to the first folder only; the seeds come second so they stay as committed.
  if fuzz run --sanitizer "$sanitizer" "$target" "fuzz/corpus-run/$target" "fuzz/corpus/$target" -- \
    -max_total_time="$seconds" -timeout=10 -print_final_stats=1 >"$logs/$target" 2>&1; then
    grep -E '^#[0-9]+[[:space:]]+DONE' "$logs/$target" | tail -1 || true
  else
    # The property or panic that failed (inputs can be long: lines are cut), then the summary.
    grep -m1 -A4 'panicked at' "$logs/$target" | cut -c1-400 || true
    tail -20 "$logs/$target"
    failed+=("$target")
  fi
done

if [ "${#failed[@]}" -gt 0 ]; then
  echo "fuzzing failed: ${failed[*]} (inputs in fuzz/artifacts/; replay with" \
    "RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir fuzz <target> <file>)" >&2
  exit 1
fi
echo "== fuzzing: no failures"
