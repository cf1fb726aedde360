#!/usr/bin/env bash
# Builds the browser app's wasm: release build for wasm32, wasm-bindgen (--target web) into
# pkg/, then wasm-opt. Run from anywhere; assumes the tools from .ci/setup are installed.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --target wasm32-unknown-unknown --lib
target_dir=$(cargo metadata --format-version 1 --no-deps 2>/dev/null | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
wasm="$target_dir/wasm32-unknown-unknown/release/camsam.wasm"
mkdir -p pkg
wasm-bindgen --target web --no-typescript --out-dir pkg "$wasm"
if command -v wasm-opt >/dev/null 2>&1; then
  # -O2 keeps the build quick; bulk-memory etc. are what Rust's wasm32 target emits.
  wasm-opt -O2 --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue \
    pkg/camsam_bg.wasm -o pkg/camsam_bg.wasm
else
  echo "build: wasm-opt not found, pkg/camsam_bg.wasm left unoptimised" >&2
fi
ls -l pkg/camsam_bg.wasm >&2
