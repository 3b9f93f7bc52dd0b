#!/usr/bin/env python3
"""Check the GGUF files Burnish writes for a fine-tuned decoder (`burnish export-gguf`, or the
page's "Export GGUF") against llama.cpp's own reader and transformers.

    python3 scripts/verify_gguf.py --model HF_DIR --f16 FILE.gguf --q8 FILE.gguf --burnish BIN

  1. The `gguf` package (llama.cpp's gguf-py) parses each file: its architecture, a token list as
     long as the vocabulary, the chat template when the folder has one, 2-D weights in F16 (resp.
     Q8_0) and norms in F32.
  2. transformers loads the F16 file (`from_pretrained(..., gguf_file=...)`, its tokenizer too):
     the same prompt ids as the folder's tokenizer, and the same greedy tokens as the HF folder.
  3. The Q8_0 file in transformers generates the same greedy tokens as Burnish does from the same
     file (`BIN generate --model FILE.gguf`); the largest logit change against the folder is
     printed (8-bit weights).

Exit codes: 0 ok, 1 mismatch or failure, 2 torch/transformers/gguf not installed.
"""

import argparse
import json
import os
import subprocess
import sys

PROMPTS = ["The film was great and", "user: Say hello.\nassistant: "]


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    return 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--f16", required=True)
    ap.add_argument("--q8", required=True)
    ap.add_argument("--burnish", required=True)
    ap.add_argument("--tokens", type=int, default=8)
    args = ap.parse_args()
    try:
        import gguf
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as e:
        print(f"not installed ({e}); pip install torch transformers gguf", file=sys.stderr)
        return 2

    cfg = json.load(open(os.path.join(args.model, "config.json")))
    tc_path = os.path.join(args.model, "tokenizer_config.json")
    has_template = os.path.exists(os.path.join(args.model, "chat_template.jinja")) or (os.path.exists(tc_path) and "chat_template" in json.load(open(tc_path)))
    # 1. llama.cpp's reader.
    for path, want in [(args.f16, gguf.GGMLQuantizationType.F16), (args.q8, gguf.GGMLQuantizationType.Q8_0)]:
        r = gguf.GGUFReader(path)
        field = lambda k: r.fields[k]  # noqa: E731
        arch = bytes(field("general.architecture").parts[-1]).decode()
        if arch != cfg["model_type"]:
            return fail(f"{path}: general.architecture {arch}, config.json says {cfg['model_type']}")
        n_tokens = len(field("tokenizer.ggml.tokens").data)
        if n_tokens != cfg["vocab_size"]:
            return fail(f"{path}: {n_tokens} tokens for vocab_size {cfg['vocab_size']}")
        if has_template and "tokenizer.chat_template" not in r.fields:
            return fail(f"{path}: no tokenizer.chat_template")
        for t in r.tensors:
            expect = want if len(t.shape) == 2 and t.shape[0] % 32 == 0 else (gguf.GGMLQuantizationType.F32 if len(t.shape) == 1 else None)
            if expect is not None and t.tensor_type != expect and not (want == gguf.GGMLQuantizationType.Q8_0 and t.tensor_type == gguf.GGMLQuantizationType.F16):
                return fail(f"{path}: tensor {t.name} is {t.tensor_type.name}, expected {expect.name}")
        print(f"gguf reads {os.path.basename(path)}: {arch}, {len(r.tensors)} tensors, {n_tokens} tokens, {os.path.getsize(path):,} bytes")

    hf_tok = AutoTokenizer.from_pretrained(args.model)
    hf = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.float32, attn_implementation="eager").eval()

    def load(path):
        d, f = os.path.dirname(os.path.abspath(path)), os.path.basename(path)
        return AutoModelForCausalLM.from_pretrained(d, gguf_file=f, dtype=torch.float32, attn_implementation="eager").eval(), AutoTokenizer.from_pretrained(d, gguf_file=f)

    def greedy(model, ids):
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=args.tokens, do_sample=False, pad_token_id=hf_tok.eos_token_id or 0)
        return out[0, ids.shape[1]:].tolist()

    # 2. F16 in transformers: the folder's tokens.
    f16, f16_tok = load(args.f16)
    for p in PROMPTS:
        ids = hf_tok(p, return_tensors="pt").input_ids
        if f16_tok(p).input_ids != ids[0].tolist():
            return fail(f"the GGUF's tokenizer gives {f16_tok(p).input_ids} for {p!r}, the folder's {ids[0].tolist()}")
        a, b = greedy(f16, ids), greedy(hf, ids)
        if a != b:
            return fail(f"F16 GGUF generated {a} for {p!r}, the HF folder {b}")
        print(f"  f16 {p!r}: {a} (as the HF folder)")

    # 3. Q8_0: transformers and Burnish on the same file.
    q8, _ = load(args.q8)
    worst = 0.0
    for p in PROMPTS:
        ids = hf_tok(p, return_tensors="pt").input_ids
        with torch.no_grad():
            worst = max(worst, float((q8(ids).logits - hf(ids).logits).abs().max()))
        want = greedy(q8, ids)
        proc = subprocess.run([args.burnish, "generate", "--model", args.q8, "--prompt", p, "--max-new-tokens", str(args.tokens), "--json"], capture_output=True, text=True)
        if proc.returncode != 0:
            return fail(f"burnish generate on {args.q8} exited {proc.returncode}: {proc.stderr}")
        got = json.loads(proc.stdout)
        if got["ids"] != want:
            return fail(f"Q8_0 {p!r}: burnish generated {got['ids']}, transformers {want}")
        print(f"  q8_0 {p!r}: {want} (transformers = burnish)")
    print(f"Q8_0 against the f32 folder: largest logit change {worst:.3e}")
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
