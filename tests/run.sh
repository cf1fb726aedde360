#!/usr/bin/env bash
# The whole test suite (README's test command). Installs what it needs, then runs every check CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup

step() { printf '\n== %s (at %d min %02d s)\n' "$*" $((SECONDS / 60)) $((SECONDS % 60)) >&2; }

step "format"
cargo fmt --check
step "clippy"
cargo clippy --all-targets -- -D warnings
step "clippy for wasm32 (the page's library: web/ and the browser-only paths)"
cargo clippy --target wasm32-unknown-unknown --lib -- -D warnings
step "native tests"
# lavapipe is installed by .ci/setup: WebGPU tests must run, not skip.
export CAMSAM_REQUIRE_GPU=1
cargo test --all-targets
export CAMSAM_FUZZ_SECONDS="${CAMSAM_FUZZ_SECONDS:-30}"
step "fuzzing: every parser for ${CAMSAM_FUZZ_SECONDS} s each (cargo-fuzz, tests/fuzz/run.sh)"
bash tests/fuzz/run.sh
step "browser app: wasm release build, wasm-bindgen, wasm-opt (www/build.sh)"
bash www/build.sh
step "browser end-to-end tests (headless Chromium, tests/e2e): the app, offline and on a plain static host, recovery after a wasm trap, the CPU model on helper workers"
(cd tests/e2e && npm ci --no-audit --no-fund --loglevel=error && node --test --test-concurrency=1 app.test.mjs methods.test.mjs medical.test.mjs threads.test.mjs offline.test.mjs recovery.test.mjs)
step "wasm tests in headless Chromium (wasm-bindgen-test: MobileSAM decoder on the fixtures, CPU and WebGPU; WebGPU kernel parity)"
# SwiftShader's WebGPU is slow: some checks take longer than the runner's default 20 s.
CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}" WASM_BINDGEN_TEST_TIMEOUT=180 \
    cargo test --target wasm32-unknown-unknown --test wasm_sam_decoder --test wasm_gpu_kernels
step "the CPU model's wasm tests again with relaxed SIMD (the page's build where the browser has it: fused multiply-add in the matrix kernel)"
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
CHROMEDRIVER="${CHROMEDRIVER:-/usr/bin/chromedriver}" WASM_BINDGEN_TEST_TIMEOUT=180 \
    cargo test --target wasm32-unknown-unknown --test wasm_sam_decoder --target-dir "$target_dir/relaxed-simd" \
    --config 'target.wasm32-unknown-unknown.rustflags = ["-C", "target-feature=+relaxed-simd"]'
step "all checks passed"
