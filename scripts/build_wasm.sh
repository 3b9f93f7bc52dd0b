#!/usr/bin/env bash
# Builds the two wasm modules the page loads:
#   www/pkg     WebGPU + the CPU backend on one thread (every browser);
#   www/pkg-mt  the CPU backend on a rayon pool of Web Workers (wasm threads: atomics, shared
#               memory; std rebuilt with them by `-Z build-std`, allowed on stable Rust by
#               RUSTC_BOOTSTRAP=1, from the rust-src component). No WebGPU in it: wgpu's browser
#               types are not Send, which a build with atomics requires. The worker loads it
#               when the page is cross-origin isolated and the CPU trains.
# Each is wasm-pack with the size-tuned `wasm-release` profile (Cargo.toml: full LTO, one codegen
# unit, size-optimised code except the numeric kernels; SIMD128), then binaryen's current
# wasm-opt from npm (scripts/wasm-opt; Debian's binaryen 108 breaks wasm-bindgen 0.2.130's
# externref table), whose output is cached by the input's hash (it takes minutes), then a gzip
# copy that scripts/serve.mjs sends to browsers that accept it, and manifest.json with both
# sizes (the worker's download progress bar and the browser benchmark read it).
# BURNISH_WASM_OPT=0 skips wasm-opt, BURNISH_WASM_OPT_LEVEL=-O2 (etc.) sets its level (-O3);
# BURNISH_WASM_THREADS=0 skips the threaded module; BURNISH_WASM_GPU_FEATURES=fusion,autotune builds
# www/pkg with burn's fusion and autotune (BENCHMARKS.md measured it; manifest.json records it).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/burnish/target}"
export PATH="$HOME/.cargo/bin:$PATH"
cd "$ROOT"

WASM_OPT=scripts/wasm-opt/node_modules/binaryen/bin/wasm-opt
OPT_LEVEL="${BURNISH_WASM_OPT_LEVEL:--O3}"
OPT_FLAGS=("$OPT_LEVEL" --strip-debug --strip-producers --enable-simd --enable-bulk-memory --enable-nontrapping-float-to-int
  --enable-sign-ext --enable-mutable-globals --enable-reference-types --enable-multivalue)

# finish DIR [extra wasm-opt flags]: wasm-opt (cached), gzip, manifest.json.
finish() {
  local dir=$1; shift
  local wasm=$dir/burnish_bg.wasm
  local opt_json=null
  if [ "${BURNISH_WASM_OPT:-1}" = 1 ]; then
    if [ ! -x "$WASM_OPT" ]; then
      (cd scripts/wasm-opt && npm ci --no-audit --no-fund --loglevel=error --ignore-scripts) >&2
    fi
    local cache="$CARGO_TARGET_DIR/wasm-opt-cache"
    local key
    key=$( (sha256sum "$wasm" | cut -d' ' -f1; echo "${OPT_FLAGS[*]} $*"; cat scripts/wasm-opt/package-lock.json) | sha256sum | cut -d' ' -f1)
    mkdir -p "$cache"
    if [ -f "$cache/$key.wasm" ]; then
      echo "[build] wasm-opt: $wasm unchanged since the last build, its optimised copy reused" >&2
    else
      echo "[build] wasm-opt $OPT_LEVEL $wasm ($(du -h "$wasm" | cut -f1) before; a few minutes)" >&2
      node --max-old-space-size=8192 "$WASM_OPT" "${OPT_FLAGS[@]}" "$@" "$wasm" -o "$cache/$key.tmp"
      mv "$cache/$key.tmp" "$cache/$key.wasm"
      ls -t "$cache"/*.wasm | tail -n +5 | xargs -r rm -f # keep the newest four
    fi
    cp "$cache/$key.wasm" "$wasm"
    opt_json="\"$OPT_LEVEL\""
  fi
  gzip -9 -k -f "$wasm"
  local raw gz
  raw=$(stat -c %s "$wasm"); gz=$(stat -c %s "$wasm.gz")
  printf '{"wasm_bytes": %s, "wasm_gzip_bytes": %s, "wasm_opt": %s, "features": %s}\n' "$raw" "$gz" "$opt_json" "${FEATURES_JSON:-\"threads\"}" > "$dir/manifest.json"
  echo "[build] $wasm: $raw bytes, $gz gzipped" >&2
}

echo "[build] www/pkg: wasm-pack build --profile wasm-release (cold: ~15 min on 2 cores)" >&2
GPU_FEATURES="${BURNISH_WASM_GPU_FEATURES:-}"
wasm-pack build --target web --out-dir www/pkg --out-name burnish --profile wasm-release --no-pack . \
  ${GPU_FEATURES:+-- --features "$GPU_FEATURES"} >&2
FEATURES_JSON="\"$GPU_FEATURES\"" finish www/pkg

if [ "${BURNISH_WASM_THREADS:-1}" = 1 ]; then
  if ! rustup component list --installed 2>/dev/null | grep -q '^rust-src'; then
    echo "[build] rustup component add rust-src (std is rebuilt with atomics)" >&2
    rustup component add rust-src >&2
  fi
  echo "[build] www/pkg-mt: the threaded CPU module (cold: ~15 min on 2 cores)" >&2
  # Its own target folder: different flags would otherwise rebuild the other module each time.
  RUSTC_BOOTSTRAP=1 CARGO_TARGET_DIR="$CARGO_TARGET_DIR/wasm-mt" \
    RUSTFLAGS="-C target-feature=+atomics,+bulk-memory,+simd128 -C link-arg=--max-memory=4294967296" \
    wasm-pack build --target web --out-dir www/pkg-mt --out-name burnish --profile wasm-release --no-pack . \
    -- --no-default-features --features threads -Z build-std=panic_abort,std >&2
  finish www/pkg-mt --enable-threads
fi
