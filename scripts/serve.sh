#!/usr/bin/env bash
# README command 1: install what is needed, build the wasm, fetch the bundled default model and
# data, and serve the page on http://127.0.0.1:${PORT:-8080}/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
source "$ROOT/scripts/setup.sh"
bash "$ROOT/scripts/build_wasm.sh"
exec node "$ROOT/scripts/serve.mjs" "${PORT:-8080}"
