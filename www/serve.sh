#!/usr/bin/env bash
# README's first command: installs what is needed (.ci/setup), builds the wasm app into pkg/
# and serves it on http://127.0.0.1:8080 (PORT=… to change). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
bash .ci/setup
bash www/build.sh
echo "camsam: open http://127.0.0.1:${PORT:-8080}/ (bench view: http://127.0.0.1:${PORT:-8080}/?bench)" >&2
exec python3 www/serve.py --port "${PORT:-8080}"
