#!/usr/bin/env bash
# README command 2: install what is needed, then run every test: native (cargo test: fidelity
# against transformers fixtures, data parsing, training, export round trip, CLI) and the
# browser tests (Playwright in headless Chromium, on WebGPU/SwiftShader and on the CPU fallback).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export BURNISH_NEED_BROWSER=1
source "$ROOT/scripts/setup.sh"
cd "$ROOT"

echo "[test] native: cargo test --profile ci (release speed, no LTO: Cargo.toml)" >&2
cargo test --profile ci -- --test-threads=1
BIN="$CARGO_TARGET_DIR/ci/burnish"
# The browser tests compare the page with this CLI build (tests/browser/harness.mjs).
export BURNISH_BIN="$BIN"

echo "[test] browser: build wasm, then node --test tests/browser" >&2
bash scripts/build_wasm.sh
echo "[test] the worker's calls into the engine, checked against wasm-bindgen's declarations (tsc --checkJs)" >&2
node tests/browser/node_modules/typescript/bin/tsc -p www/tsconfig.json # (the page ↔ worker names: tests/browser/protocol.test.mjs)
node --test --test-concurrency=1 tests/browser/

# Where transformers is installed (not required), check the CLI export loads there identically.
if python3 -c "import transformers, torch" 2>/dev/null; then
  echo "[test] transformers is installed: verifying an exported folder loads with the same logits" >&2
  OUT="$(mktemp -d)"
  "$BIN" train --model tests/fixtures/tiny-bert --train tests/data/quirks.csv \
    --epochs 1 --batch-size 4 --max-len 32 --eval-fraction 0.34 --out "$OUT" >/dev/null
  python3 scripts/verify_export.py --model "$OUT" --burnish "$BIN"

  # Masked-LM domain adaptation: the BertForMaskedLM folder loads in transformers and fills
  # masks with the same tokens and scores.
  echo "[test] transformers: a domain-adapted BertForMaskedLM folder fills masks identically" >&2
  OUT="$(mktemp -d)"
  "$BIN" train --task masked-lm --model tests/fixtures/tiny-bert \
    --train tests/data/domain-reviews.txt --epochs 2 --lr 5e-3 --batch-size 8 --max-len 32 --out "$OUT" >/dev/null
  python3 scripts/verify_mlm.py --model "$OUT" --burnish "$BIN"

  # RoBERTa, XLM-RoBERTa, DistilBERT: fine-tuned classifier folders predict the same logits in
  # transformers, and domain-adapted …ForMaskedLM folders fill masks identically.
  for m in roberta xlmr distilbert; do
    echo "[test] transformers: tiny-$m classifier and masked-LM exports" >&2
    OUT="$(mktemp -d)"
    "$BIN" train --model "tests/fixtures/tiny-$m" --train tests/data/quirks.csv \
      --epochs 1 --batch-size 4 --max-len 32 --eval-fraction 0.34 --out "$OUT" >/dev/null
    python3 scripts/verify_export.py --model "$OUT" --burnish "$BIN" --max-len 64
    OUT="$(mktemp -d)"
    "$BIN" train --task masked-lm --model "tests/fixtures/tiny-$m-mlm" \
      --train tests/data/domain-reviews.txt --epochs 1 --lr 5e-3 --batch-size 8 --max-len 32 --out "$OUT" >/dev/null
    python3 scripts/verify_mlm.py --model "$OUT" --burnish "$BIN"
  done

  # Causal LMs: an instruction-tuned Llama (from sharded weights) and a GPT-2 tuned on plain
  # text load in transformers as AutoModelForCausalLM and generate the same tokens.
  echo "[test] transformers: fine-tuned decoders (Llama, GPT-2) generate identically" >&2
  OUT="$(mktemp -d)"
  "$BIN" train --task instruct --model tests/fixtures/tiny-llama \
    --train tests/data/instruct-pairs.jsonl --prompt-template question-answering --epochs 3 --lr 5e-3 \
    --batch-size 4 --max-len 48 --out "$OUT" >/dev/null
  python3 scripts/verify_causal.py --model "$OUT" --burnish "$BIN"
  # The instruction-tuned Llama as GGUF (F16 and Q8_0): llama.cpp's gguf reader parses both,
  # transformers loads them (F16: the folder's greedy tokens; Q8_0: Burnish's on the same file).
  if ! python3 -c "import gguf" 2>/dev/null; then
    python3 -m pip install --quiet gguf >&2 || echo "[test] could not install gguf" >&2
  fi
  if python3 -c "import gguf" 2>/dev/null; then
    echo "[test] gguf: the fine-tuned Llama exported as F16 and Q8_0 GGUF" >&2
    "$BIN" export-gguf --model "$OUT" --type f16 --out "$OUT/model-f16.gguf"
    "$BIN" export-gguf --model "$OUT" --type q8_0 --out "$OUT/model-q8_0.gguf"
    python3 scripts/verify_gguf.py --model "$OUT" --f16 "$OUT/model-f16.gguf" --q8 "$OUT/model-q8_0.gguf" --burnish "$BIN"
  fi
  OUT="$(mktemp -d)"
  "$BIN" train --task causal-lm --model tests/fixtures/tiny-gpt2 \
    --train tests/data/domain-reviews.txt --epochs 2 --lr 3e-3 --batch-size 4 --max-len 32 --out "$OUT" >/dev/null
  python3 scripts/verify_causal.py --model "$OUT" --burnish "$BIN"

  # LoRA: the PEFT adapter folder loads with peft on top of the base model, same logits.
  if ! python3 -c "import peft" 2>/dev/null; then
    python3 -m pip install --quiet --no-deps peft==0.21.2 accelerate==1.15.0 >&2 || echo "[test] could not install peft" >&2
  fi
  if python3 -c "import peft" 2>/dev/null; then
    echo "[test] peft: loading a LoRA run's adapter folder on the base model" >&2
    OUT="$(mktemp -d)"
    "$BIN" train --model tests/fixtures/tiny-bert --train tests/data/quirks.csv \
      --epochs 2 --batch-size 4 --max-len 32 --eval-fraction 0.34 --strategy lora --lora-rank 4 \
      --lora-targets query,value,output --lr 0.01 --out "$OUT" >/dev/null
    python3 scripts/verify_peft.py --export "$OUT" --base tests/fixtures/tiny-bert --burnish "$BIN"
    # RoBERTa (modules_to_save: its classifier holds the dense layer) and DistilBERT (q_lin …
    # ffn.lin2, pre_classifier).
    for m in roberta distilbert; do
      OUT="$(mktemp -d)"
      "$BIN" train --model "tests/fixtures/tiny-$m" --train tests/data/quirks.csv \
        --epochs 2 --batch-size 4 --max-len 32 --eval-fraction 0.34 --strategy lora --lora-rank 4 \
        --lora-targets query,value,output --lr 0.01 --out "$OUT" >/dev/null
      python3 scripts/verify_peft.py --export "$OUT" --base "tests/fixtures/tiny-$m" --burnish "$BIN"
    done
    # Decoders: LoRA on a Llama (every projection; chat data in its chat template) and on GPT-2
    # (fused c_attn, Conv1D fan_in_fan_out): merged folder and PEFT adapter agree.
    echo "[test] peft: LoRA decoders (Llama on chat data, GPT-2) load merged and as PEFT adapters" >&2
    OUT="$(mktemp -d)"
    "$BIN" train --task instruct --model tests/fixtures/tiny-llama \
      --train tests/data/chat.jsonl --strategy lora --lora-rank 4 --lora-targets query,key,value,attention_output,intermediate,output \
      --epochs 3 --lr 2e-2 --batch-size 4 --max-len 96 --out "$OUT" >/dev/null
    python3 scripts/verify_causal.py --model "$OUT" --burnish "$BIN" --peft-base tests/fixtures/tiny-llama \
      --prompt "user: Say hello.
assistant: "
    OUT="$(mktemp -d)"
    "$BIN" train --task causal-lm --model tests/fixtures/tiny-gpt2 \
      --train tests/data/domain-reviews.txt --strategy lora --lora-targets query,attention_output,intermediate,output \
      --epochs 2 --lr 2e-2 --batch-size 4 --max-len 32 --out "$OUT" >/dev/null
    python3 scripts/verify_causal.py --model "$OUT" --burnish "$BIN" --peft-base tests/fixtures/tiny-gpt2
    # Qwen3 (q_norm / k_norm): LoRA on every projection, merged folder and PEFT adapter.
    OUT="$(mktemp -d)"
    "$BIN" train --task instruct --model tests/fixtures/tiny-qwen3 \
      --train tests/data/instruct-pairs.jsonl --prompt-template question-answering --strategy lora --lora-rank 4 \
      --lora-targets query,key,value,attention_output,intermediate,output --epochs 3 --lr 2e-2 --batch-size 4 --max-len 48 --out "$OUT" >/dev/null
    python3 scripts/verify_causal.py --model "$OUT" --burnish "$BIN" --peft-base tests/fixtures/tiny-qwen3
    # The exported training script (Trainer + PEFT): freezing, layer-wise rates, gradual
    # unfreezing and LoRA checked on the weights after it runs on the CPU.
    if ! python3 -c "import datasets" 2>/dev/null; then
      python3 -m pip install --quiet datasets >&2 || echo "[test] could not install datasets" >&2
    fi
    if python3 -c "import datasets" 2>/dev/null; then
      echo "[test] transformers: the exported training script trains as the recipe says" >&2
      python3 scripts/verify_script.py --burnish "$BIN" --model tests/fixtures/tiny-bert --train tests/data/studio-train.csv
    fi
  fi
fi
