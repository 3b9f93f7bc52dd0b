#!/usr/bin/env bash
# Installs everything the two README commands need, idempotently, on a fresh machine of this
# kind (Debian + rustup + Node + Python): wasm target, the exact wasm-bindgen CLI, wasm-pack,
# binaryen's wasm-opt, Chromium, the browser-test npm packages, and the bundled model and data.
# Sourced by serve.sh and test.sh; each step is skipped when already done.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
WASM_BINDGEN_VERSION=0.2.130
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/burnish/target}"
export PATH="$HOME/.cargo/bin:$PATH"

log() { echo "[setup] $*" >&2; }

need_apt=()
if [ "${BURNISH_NEED_BROWSER:-0}" = 1 ]; then
  command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
  command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
  # A CJK font, so that the Chinese UI and data render in the test screenshots.
  fc-list :lang=zh 2>/dev/null | grep -q . || need_apt+=(fonts-wqy-microhei)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
  log "apt-get install ${need_apt[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

if ! rustup target list --installed 2>/dev/null | grep -q wasm32-unknown-unknown; then
  log "rustup target add wasm32-unknown-unknown"
  rustup target add wasm32-unknown-unknown
fi

if [ "$(wasm-bindgen --version 2>/dev/null | awk '{print $2}')" != "$WASM_BINDGEN_VERSION" ]; then
  log "cargo install wasm-bindgen-cli $WASM_BINDGEN_VERSION (a few minutes)"
  # No --locked: one locked dependency of this release is missing from the registry.
  cargo install wasm-bindgen-cli --version "$WASM_BINDGEN_VERSION" --force
fi

if ! command -v wasm-pack >/dev/null 2>&1; then
  log "cargo install wasm-pack (a few minutes)"
  cargo install wasm-pack
fi

# The page's browser libraries (Chart.js, fflate, coi-serviceworker), pinned in www/package.json, copied with
# their licences into www/vendor/ so the page serves them from its own origin.
if [ ! -f "$ROOT/www/vendor/chart.umd.min.js" ] || [ ! -f "$ROOT/www/vendor/fflate.js" ] || [ ! -f "$ROOT/www/coi-serviceworker.js" ]; then
  log "npm ci (page libraries) -> www/vendor"
  (cd "$ROOT/www" && npm ci --no-audit --no-fund --loglevel=error)
  mkdir -p "$ROOT/www/vendor"
  cp "$ROOT/www/node_modules/chart.js/dist/chart.umd.min.js" "$ROOT/www/vendor/chart.umd.min.js"
  cp "$ROOT/www/node_modules/chart.js/LICENSE.md" "$ROOT/www/vendor/chart.js.LICENSE.md"
  cp "$ROOT/www/node_modules/fflate/esm/browser.js" "$ROOT/www/vendor/fflate.js"
  cp "$ROOT/www/node_modules/fflate/LICENSE" "$ROOT/www/vendor/fflate.LICENSE"
  cp "$ROOT/www/node_modules/coi-serviceworker/coi-serviceworker.js" "$ROOT/www/coi-serviceworker.js"
  cp "$ROOT/www/node_modules/coi-serviceworker/LICENSE" "$ROOT/www/vendor/coi-serviceworker.LICENSE"
fi

# binaryen's current wasm-opt (npm; Debian's 108 breaks the module), for scripts/build_wasm.sh.
if [ ! -x "$ROOT/scripts/wasm-opt/node_modules/binaryen/bin/wasm-opt" ]; then
  log "npm ci (binaryen's wasm-opt) -> scripts/wasm-opt"
  (cd "$ROOT/scripts/wasm-opt" && npm ci --no-audit --no-fund --loglevel=error --ignore-scripts)
fi

log "assets (model and data)"
python3 "$ROOT/scripts/fetch_assets.py"

if [ "${BURNISH_NEED_BROWSER:-0}" = 1 ]; then
  if [ ! -d "$ROOT/tests/browser/node_modules/playwright-core" ] || [ ! -d "$ROOT/tests/browser/node_modules/typescript" ]; then
    log "npm ci (browser tests)"
    (cd "$ROOT/tests/browser" && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
