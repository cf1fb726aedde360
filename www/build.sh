#!/usr/bin/env bash
# Builds the browser app's wasm into pkg/: release builds for wasm32 (SIMD128, and SIMD128 with
# relaxed SIMD), wasm-opt, then wasm-bindgen --target web. Run from anywhere; assumes the tools from .ci/setup.
#
# wasm-opt runs on rustc's output, before wasm-bindgen: Debian's binaryen (108) breaks the
# externref table that wasm-bindgen adds ("WebAssembly.Table.set(): Argument 1 is invalid").
set -euo pipefail
cd "$(dirname "$0")/.."
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p pkg

# The SIMD128 build: pkg/camsam.js and pkg/camsam_bg.wasm.
cargo build --release --target wasm32-unknown-unknown --lib
wasm="$target_dir/wasm32-unknown-unknown/release/camsam.wasm"
if command -v wasm-opt >/dev/null 2>&1; then
  wasm-opt -O2 --all-features "$wasm" -o "$tmp/camsam.wasm"
else
  echo "build: wasm-opt not found, the wasm is left unoptimised" >&2
  cp "$wasm" "$tmp/camsam.wasm"
fi
wasm-bindgen --target web --no-typescript --out-dir pkg "$tmp/camsam.wasm"

# The relaxed-SIMD build for browsers that have it (www/worker/library.js picks):
# pkg/camsam_relaxed.js and pkg/camsam_relaxed_bg.wasm. Same source and flags
# (.cargo/config.toml), plus relaxed-simd (the CPU model's matrix kernel then uses
# f32x4.relaxed_madd), in a target folder of its own so that neither build undoes the other.
# Debian's binaryen (108) cannot parse relaxed SIMD: where wasm-opt fails, the module stays
# as rustc optimised it.
cargo build --release --target wasm32-unknown-unknown --lib \
  --config 'target.wasm32-unknown-unknown.rustflags = ["-C", "target-feature=+relaxed-simd"]' \
  --target-dir "$target_dir/relaxed-simd"
relaxed="$target_dir/relaxed-simd/wasm32-unknown-unknown/release/camsam.wasm"
if ! command -v wasm-opt >/dev/null 2>&1 || ! wasm-opt -O2 --all-features "$relaxed" -o "$tmp/camsam_relaxed.wasm" 2>/dev/null; then
  echo "build: the relaxed-SIMD wasm is left as rustc optimised it (this wasm-opt cannot read relaxed SIMD)" >&2
  cp "$relaxed" "$tmp/camsam_relaxed.wasm"
fi
wasm-bindgen --target web --no-typescript --out-dir pkg "$tmp/camsam_relaxed.wasm"
ls -l pkg/camsam_bg.wasm pkg/camsam_relaxed_bg.wasm >&2
