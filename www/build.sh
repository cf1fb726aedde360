#!/usr/bin/env bash
# Builds the browser app's wasm into pkg/: a release build for wasm32, wasm-opt, then
# wasm-bindgen --target web. Run from anywhere; assumes the tools from .ci/setup.
#
# wasm-opt runs on rustc's output, before wasm-bindgen: Debian's binaryen (108) breaks the
# externref table that wasm-bindgen adds ("WebAssembly.Table.set(): Argument 1 is invalid").
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --target wasm32-unknown-unknown --lib
target_dir=$(cargo metadata --format-version 1 --no-deps | python3 -c 'import json,sys; print(json.load(sys.stdin)["target_directory"])')
wasm="$target_dir/wasm32-unknown-unknown/release/camsam.wasm"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if command -v wasm-opt >/dev/null 2>&1; then
  wasm-opt -O2 --all-features "$wasm" -o "$tmp/camsam.wasm"
else
  echo "build: wasm-opt not found, the wasm is left unoptimised" >&2
  cp "$wasm" "$tmp/camsam.wasm"
fi
mkdir -p pkg
wasm-bindgen --target web --no-typescript --out-dir pkg "$tmp/camsam.wasm"
ls -l pkg/camsam_bg.wasm >&2
