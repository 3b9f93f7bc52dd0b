#!/usr/bin/env bash
# Benchmarks recorded in BENCHMARKS.md. Needs torch + transformers (pip) for the PyTorch side.
#   bash bench/run.sh speed     # burnish bench vs bench/torch_bench.py, same machine, same threads
#   bash bench/run.sh quality   # MiniLM on the rotten-tomatoes split, burnish vs bench/quality_torch.py
#   bash bench/run.sh compare   # every strategy preset on MiniLM: rotten tomatoes and SpamAssassin
#                               # (tables -> bench/results/compare-*/comparison.md, docs/strategies.md)
#   bash bench/run.sh decoder   # SmolLM2 GGUF: training steps (full, LoRA) and generation tokens/s, burnish vs PyTorch
#   bash bench/run.sh browser   # the page in headless Chromium (wasm CPU, WebGPU/SwiftShader) vs Transformers.js
#                               # (bench/browser.mjs -> bench/results/browser.json)
#   bash bench/run.sh wgpu      # the wgpu backend natively (lavapipe here: Mesa's Vulkan on the CPU), built without and
#                               # with burn's fusion + autotune: MiniLM step/forward, SmolLM2 LoRA step/generation
#                               # (table -> bench/results/wgpu/wgpu.md)
#   bash bench/run.sh domain    # MiniLM on 480 rotten-tomatoes rows: plain fine-tuning vs the two-stage
#                               # recipe (masked-LM adaptation on movie-domain.txt first), same budget
#                               # (table -> bench/results/domain/domain.md, docs/strategies.md)
# Results land in bench/results/*.json. Run on an idle machine: the figures are wall-clock.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/burnish/target}"
THREADS="${THREADS:-$(nproc)}"
MODEL=www/assets/models/all-MiniLM-L6-v2
python3 scripts/fetch_assets.py
cargo build --release --bin burnish >&2
BIN="$CARGO_TARGET_DIR/release/burnish"
mkdir -p bench/results
case "${1:-speed}" in
  speed)
    RAYON_NUM_THREADS="$THREADS" "$BIN" bench --model "$MODEL" --batch-size 16 --max-len 64 --steps 10 > bench/results/burnish_bench_${THREADS}thread.json
    python3 bench/torch_bench.py --model "$MODEL" --batch-size 16 --max-len 64 --steps 10 --threads "$THREADS" > bench/results/torch_bench_${THREADS}thread.json
    THREADS="$THREADS" python3 - <<'PY'
import json, os
n = os.environ["THREADS"]
b = json.load(open(f"bench/results/burnish_bench_{n}thread.json")); t = json.load(open(f"bench/results/torch_bench_{n}thread.json"))
print(f"burnish {b['median_step_s']:.3f} s/step, pytorch {t['median_step_s']:.3f} s/step, ratio {b['median_step_s']/t['median_step_s']:.2f}x")
PY
    ;;
  quality)
    OUT="$(mktemp -d)"
    RAYON_NUM_THREADS="$THREADS" "$BIN" train --model "$MODEL" --train www/assets/data/rt-train.csv --eval www/assets/data/rt-test.csv \
      --epochs 2 --lr 5e-5 --batch-size 16 --max-len 64 --warmup-ratio 0.1 --weight-decay 0.01 --seed 42 --out "$OUT" > bench/results/quality_burnish.json
    # The PyTorch reference takes ~10+ min on 2 cores; its accuracy does not depend on load.
    if [ ! -s bench/results/quality_torch.json ] || [ "${RERUN_TORCH:-0}" = 1 ]; then
      python3 bench/quality_torch.py --threads "$THREADS" > bench/results/quality_torch.json
    fi
    python3 - <<'PY'
import json
b = json.load(open("bench/results/quality_burnish.json")); t = json.load(open("bench/results/quality_torch.json"))
print(f"accuracy burnish {b['accuracy']:.4f}, pytorch {t['accuracy']:.4f}, difference {100*(b['accuracy']-t['accuracy']):+.2f} points")
PY
    ;;
  compare)
    python3 bench/spam_data.py
    # The same budget for every strategy within a dataset: a seeded, stratified subset of the
    # training file, 2 epochs (sized so both tables take about half an hour on 2 cores).
    RAYON_NUM_THREADS="$THREADS" "$BIN" compare --model "$MODEL" --train www/assets/data/rt-train.csv --eval www/assets/data/rt-test.csv \
      --epochs 2 --batch-size 16 --max-len 64 --max-train 600 --title "Rotten tomatoes (sentence sentiment)" --out bench/results/compare-rt >/dev/null
    RAYON_NUM_THREADS="$THREADS" "$BIN" compare --model "$MODEL" --train www/assets/data/spam-train.csv --eval www/assets/data/spam-test.csv \
      --epochs 2 --batch-size 16 --max-len 96 --max-train 400 --title "SpamAssassin (ham / spam emails)" --out bench/results/compare-spam >/dev/null
    cat bench/results/compare-rt/comparison.md bench/results/compare-spam/comparison.md
    ;;
  domain)
    OUT=bench/results/domain
    mkdir -p "$OUT"
    COMMON=(--model "$MODEL" --train www/assets/data/sentiment-demo.csv --eval www/assets/data/rt-test.csv
      --epochs 3 --lr 1e-4 --batch-size 16 --max-len 64 --seed 42)
    RAYON_NUM_THREADS="$THREADS" "$BIN" train "${COMMON[@]}" --out "$OUT/plain" > "$OUT/plain.json"
    RAYON_NUM_THREADS="$THREADS" "$BIN" train "${COMMON[@]}" --domain www/assets/data/movie-domain.txt --mlm-epochs 2 --mlm-lr 1e-4 \
      --out "$OUT/two-stage" > "$OUT/two-stage.json"
    python3 - <<'PY'
import json
p = json.load(open("bench/results/domain/plain.json")); t = json.load(open("bench/results/domain/two-stage.json"))
h = t["domain_adaptation"]["history"]
rows = [
    "| recipe | held-out domain perplexity | masked-token accuracy | accuracy | macro-F1 | eval loss | training time |",
    "|---|---|---|---|---|---|---|",
    f"| plain fine-tuning (3 epochs) | — | — | {p['accuracy']:.4f} | {p['macro_f1']:.4f} | {p['loss']:.4f} | {p['train_seconds']:.0f} s |",
    f"| masked-LM adaptation (2 epochs on movie-domain.txt), then the same fine-tuning | {h[0]['perplexity']:.1f} → {h[-1]['perplexity']:.1f} | {h[0]['masked_accuracy']:.3f} → {h[-1]['masked_accuracy']:.3f} | {t['accuracy']:.4f} | {t['macro_f1']:.4f} | {t['loss']:.4f} | {t['domain_adaptation']['train_seconds']:.0f} s + {t['train_seconds']:.0f} s |",
]
open("bench/results/domain/domain.md", "w").write("\n".join(rows) + "\n")
print("\n".join(rows))
PY
    ;;
  decoder)
    # SmolLM2-135M-Instruct (GGUF, dequantized): training steps (every weight, and LoRA rank 8 on
    # q/v) at batch 4 x 64 tokens, and greedy generation of 32 tokens; Burnish vs PyTorch.
    GGUF=www/assets/models/SmolLM2-135M-Instruct.Q4_1.gguf
    for S in full lora; do
      RAYON_NUM_THREADS="$THREADS" "$BIN" bench --model "$GGUF" --strategy "$S" --batch-size 4 --max-len 64 --steps 3 --warmup 1 \
        --gen-tokens 32 > "bench/results/decoder_burnish_${S}.json"
      python3 bench/torch_decoder_bench.py --model "$GGUF" --strategy "$S" --batch-size 4 --max-len 64 --steps 3 --warmup 1 \
        --gen-tokens 32 --threads "$THREADS" > "bench/results/decoder_torch_${S}.json"
    done
    python3 - <<'PY'
import json
rows = ["| strategy | trainable | Burnish s/step | PyTorch s/step | ratio | Burnish generation tokens/s | PyTorch generation tokens/s |", "|---|---|---|---|---|---|---|"]
for s in ("full", "lora"):
    b = json.load(open(f"bench/results/decoder_burnish_{s}.json")); t = json.load(open(f"bench/results/decoder_torch_{s}.json"))
    bs, ts = b["training"]["median_step_s"], t["training"]["median_step_s"]
    rows.append(f"| {s} | {b['trainable']:,} | {bs:.3f} | {ts:.3f} | {bs / ts:.2f}× slower | {b['generation_tokens_per_s']:.1f} | {t['generation_tokens_per_s']:.1f} |")
open("bench/results/decoder.md", "w").write("\n".join(rows) + "\n")
print("\n".join(rows))
PY
    ;;
  browser)
    # The page in headless Chromium (CPU backend and WebGPU/SwiftShader) beside Transformers.js
    # (ONNX Runtime Web, WASM, one thread and every core) on the same MiniLM checkpoint:
    # bench/browser.mjs. Extra arguments go to it (e.g. --only cpu --only threads).
    bash scripts/build_wasm.sh
    (cd bench/browser && { [ -d node_modules/@huggingface/transformers ] || npm ci --ignore-scripts --no-audit --no-fund --loglevel=error; })
    ONNX="$HOME/.cache/burnish/bench/minilm-onnx"
    [ -s "$ONNX/onnx/model.onnx" ] || python3 bench/export_onnx.py --model "$MODEL" --out "$ONNX" >&2
    node bench/browser.mjs --onnx "$ONNX" "${@:2}"
    ;;
  wgpu)
    # Burnish on wgpu (Vulkan; lavapipe when no GPU driver is installed: `apt-get install
    # mesa-vulkan-drivers`), one build without burn's fusion/autotune features (the default) and
    # one with both, same shapes. Small step counts: a software Vulkan device is slow.
    OUT=bench/results/wgpu
    mkdir -p "$OUT"
    GGUF=www/assets/models/SmolLM2-135M-Instruct.Q4_1.gguf
    for F in ${FEATURES:-plain fusion,autotune}; do
      if [ "$F" = plain ]; then cargo build --release --bin burnish >&2; else cargo build --release --bin burnish --features "$F" >&2; fi
      cp "$BIN" "$OUT/.burnish-$F"
      "$OUT/.burnish-$F" bench --device gpu --model "$MODEL" --batch-size 16 --max-len 64 --steps "${STEPS:-3}" --warmup 1 > "$OUT/minilm-$F.json"
      "$OUT/.burnish-$F" bench --device gpu --model "$GGUF" --strategy lora --batch-size 4 --max-len 64 --steps "${STEPS:-3}" --warmup 1 \
        --gen-tokens 16 > "$OUT/smollm2-lora-$F.json"
      rm -f "$OUT/.burnish-$F"
    done
    python3 - <<'PY'
import json, os
d = "bench/results/wgpu"
rows = ["| build | adapter | MiniLM step 16 × 64 (s) | MiniLM forward (samples/s) | SmolLM2 LoRA step 4 × 64 (s) | SmolLM2 generation (tokens/s) |", "|---|---|---|---|---|---|"]
load = lambda p: json.load(open(p)) if os.path.exists(p) and os.path.getsize(p) else None
for f in ("plain", "fusion,autotune"):
    m = load(f"{d}/minilm-{f}.json"); s = load(f"{d}/smollm2-lora-{f}.json")
    if not m:
        continue
    sm = f"{s['training']['median_step_s']:.2f} | {s['generation_tokens_per_s']:.1f}" if s else "not measured | not measured"
    rows.append(f"| {f} | {m['backend'].get('adapter', '?')} | {m['median_step_s']:.2f} | {m['forward']['samples_per_s']:.2f} | {sm} |")
open(f"{d}/wgpu.md", "w").write("\n".join(rows) + "\n")
print("\n".join(rows))
PY
    ;;
  *) echo "usage: bench/run.sh speed|quality|compare|domain|decoder|browser|wgpu" >&2; exit 2 ;;
esac
