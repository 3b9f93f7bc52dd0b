#!/usr/bin/env bash
# Builds the wasm module into www/pkg with wasm-pack (release profile). wasm-pack's own download
# of wasm-opt is switched off in Cargo.toml. Debian's binaryen (108) is too old for
# wasm-bindgen 0.2.130's reference-types output: its -O2 shrank the module from 35 to 22 MB but
# broke the externref table ("WebAssembly.Table.set(): Argument 1 is invalid"), so the pass is
# off unless BURNISH_WASM_OPT=1.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/burnish/target}"
export PATH="$HOME/.cargo/bin:$PATH"
cd "$ROOT"
echo "[build] wasm-pack build (cold: ~10 min on 2 cores)" >&2
wasm-pack build --target web --out-dir www/pkg --out-name burnish --release --no-pack --no-typescript . >&2
WASM=www/pkg/burnish_bg.wasm
if [ "${BURNISH_WASM_OPT:-0}" = 1 ]; then
  echo "[build] wasm-opt -O2 ($(du -h $WASM | cut -f1) before)" >&2
  wasm-opt -O2 --enable-bulk-memory --enable-nontrapping-float-to-int --enable-sign-ext \
    --enable-mutable-globals --enable-reference-types --enable-multivalue "$WASM" -o "$WASM.opt"
  mv "$WASM.opt" "$WASM"
fi
echo "[build] $(du -h $WASM | cut -f1) $WASM" >&2
