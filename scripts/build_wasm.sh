#!/usr/bin/env bash
# Builds the wasm module into www/pkg: wasm-pack with the size-tuned `wasm-release` profile
# (Cargo.toml: full LTO, one codegen unit, size-optimised code except the numeric kernels; SIMD128
# from .cargo/config.toml), then binaryen's current wasm-opt from npm (scripts/wasm-opt;
# Debian's binaryen 108 breaks wasm-bindgen 0.2.130's externref table), then a gzip copy that
# scripts/serve.mjs sends to browsers that accept it, and pkg/manifest.json with both sizes
# (the worker's download progress bar and the browser benchmark read it).
# BURNISH_WASM_OPT=0 skips wasm-opt (faster local builds).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/burnish/target}"
export PATH="$HOME/.cargo/bin:$PATH"
cd "$ROOT"
echo "[build] wasm-pack build --profile wasm-release (cold: ~15 min on 2 cores)" >&2
wasm-pack build --target web --out-dir www/pkg --out-name burnish --profile wasm-release --no-pack --no-typescript . >&2
WASM=www/pkg/burnish_bg.wasm
if [ "${BURNISH_WASM_OPT:-1}" = 1 ]; then
  if [ ! -x scripts/wasm-opt/node_modules/binaryen/bin/wasm-opt ]; then
    (cd scripts/wasm-opt && npm ci --no-audit --no-fund --loglevel=error --ignore-scripts) >&2
  fi
  echo "[build] wasm-opt -O3 ($(du -h $WASM | cut -f1) before)" >&2
  node --max-old-space-size=8192 scripts/wasm-opt/node_modules/binaryen/bin/wasm-opt -O3 --strip-debug --strip-producers \
    --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue "$WASM" -o "$WASM.opt"
  mv "$WASM.opt" "$WASM"
fi
gzip -9 -k -f "$WASM"
RAW=$(stat -c %s "$WASM"); GZ=$(stat -c %s "$WASM.gz")
printf '{"wasm_bytes": %s, "wasm_gzip_bytes": %s}\n' "$RAW" "$GZ" > www/pkg/manifest.json
echo "[build] $WASM: $RAW bytes, $GZ gzipped" >&2
