#!/usr/bin/env bash
# Runs the cargo-fuzz (libFuzzer) targets for a bounded time each and fails on any crash.
#   bash tests/fuzz/run.sh                 # every target, $CAMSAM_FUZZ_SECONDS (60) each
#   CAMSAM_FUZZ_SECONDS=10 bash tests/fuzz/run.sh weights masks
# Works on the stable toolchain: cargo-fuzz's nightly flags (-Zsanitizer, …) are allowed by
# RUSTC_BOOTSTRAP=1. Installs cargo-fuzz when missing, writes the seed corpora from ../shared
# (seeds.sh), prints executions and crashes per target. A crashing input is left in
# tests/fuzz/artifacts/<target>/; reproduce it with
#   RUSTC_BOOTSTRAP=1 cargo fuzz run --fuzz-dir tests/fuzz -O -a -s $CAMSAM_FUZZ_SANITIZER <target> <file>
set -euo pipefail
cd "$(dirname "$0")/../.."
fuzz_dir=tests/fuzz
seconds="${CAMSAM_FUZZ_SECONDS:-60}"
# No sanitizer by default: camsam is safe Rust, and panics, overflows (-a), hangs (-timeout) and
# huge allocations (-rss_limit_mb) are what the targets look for; without ASan the build is
# cheaper and each second runs ~2× the inputs. CAMSAM_FUZZ_SANITIZER=address adds ASan (the
# stable toolchain ships its runtime).
sanitizer="${CAMSAM_FUZZ_SANITIZER:-none}"
export RUSTC_BOOTSTRAP=1

if ! cargo fuzz --version >/dev/null 2>&1; then
  echo "fuzz: installing cargo-fuzz" >&2
  cargo install cargo-fuzz --locked
fi
bash "$fuzz_dir/seeds.sh"

if [ $# -gt 0 ]; then
  targets=("$@")
else
  mapfile -t targets < <(cargo fuzz list --fuzz-dir "$fuzz_dir")
fi
# -O -a: optimised, with debug assertions and overflow checks (an overflow is a crash).
build=(--fuzz-dir "$fuzz_dir" -O -a -s "$sanitizer")
cargo fuzz build "${build[@]}"

logs="$fuzz_dir/target/logs"
mkdir -p "$logs"
failed=()
printf '%-14s %12s %8s %s\n' target executions crashes "artifact" >&2
for t in "${targets[@]}"; do
  mkdir -p "$fuzz_dir/corpus/$t" "$fuzz_dir/artifacts/$t"
  before=$(find "$fuzz_dir/artifacts/$t" -type f | wc -l)
  status=0
  # -timeout: one input running 10 s is a hang; -rss_limit_mb: a 2 GiB allocation is a bug.
  cargo fuzz run "${build[@]}" "$t" "$fuzz_dir/corpus/$t" -- \
    -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    >"$logs/$t.log" 2>&1 || status=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$logs/$t.log" | grep -o '[0-9]*$' || true)
  if [ -z "$execs" ]; then
    execs=$(grep -o '^#[0-9]*' "$logs/$t.log" | tail -1 | tr -d '#' || true)
  fi
  artifacts=$(find "$fuzz_dir/artifacts/$t" -type f | wc -l)
  crashes=$((artifacts - before))
  if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then crashes=1; fi
  newest=$(ls -t "$fuzz_dir/artifacts/$t" 2>/dev/null | sed -n 1p)
  printf '%-14s %12s %8s %s\n' "$t" "${execs:-?}" "$crashes" \
    "$([ "$crashes" -gt 0 ] && echo "$fuzz_dir/artifacts/$t/$newest")" >&2
  if [ "$crashes" -gt 0 ]; then
    failed+=("$t")
    grep -m1 -B2 -A25 'panicked\|ERROR: libFuzzer\|ERROR: AddressSanitizer\|==ERROR' "$logs/$t.log" >&2 || tail -30 "$logs/$t.log" >&2
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz: crashes in ${failed[*]} (logs in $logs)" >&2
  exit 1
fi
echo "fuzz: ${#targets[@]} targets, ${seconds} s each, no crashes" >&2
