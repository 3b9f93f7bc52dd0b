#!/usr/bin/env python3
"""Check that a domain-adapted folder exported by Burnish (`burnish train --task masked-lm`, or
`DIR/domain-adapted/` of a two-stage run) loads in Hugging Face transformers as a
`…ForMaskedLM` (BERT, RoBERTa, XLM-R, DistilBERT) and fills masks exactly like Burnish.

    python3 scripts/verify_mlm.py --model DIR --burnish BIN [--text "... [MASK] ..." ...] [--tol 1e-4]

Steps:
  1. AutoModelForMaskedLM / AutoTokenizer.from_pretrained(DIR) must succeed, loading the class
     config.architectures names (e.g. ["BertForMaskedLM"]), and the decoder must be tied to the
     word embeddings (no separate decoder weight was stored).
  2. For each text, transformers' masked-LM probabilities at every [MASK] (eval mode): the
     top-5 token ids and their softmax scores.
  3. `BIN fill-mask --model DIR --top-k 5 --text ...` must give the same ids in the same order
     and scores within --tol.

Exit codes: 0 ok, 1 mismatch or any failure, 2 transformers (or torch) not installed.
"""

import argparse
import json
import subprocess
import sys

DEFAULT_TEXTS = [
    "The film was [MASK] and the acting was great.",
    "A [MASK] about a detective in a small town.",
    "The [MASK] of the series answered most of the [MASK].",
]


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    return 1


def main():
    ap = argparse.ArgumentParser(description="Compare a Burnish masked-LM export with transformers.")
    ap.add_argument("--model", required=True)
    ap.add_argument("--burnish", required=True)
    ap.add_argument("--text", action="append")
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()
    texts = args.text or DEFAULT_TEXTS
    try:
        import torch
        from transformers import AutoModelForMaskedLM, AutoTokenizer
    except ImportError as e:
        print(f"transformers not installed ({e}); pip install torch transformers", file=sys.stderr)
        return 2

    try:
        model = AutoModelForMaskedLM.from_pretrained(args.model, attn_implementation="eager").eval()
        tokenizer = AutoTokenizer.from_pretrained(args.model)
    except Exception as e:  # noqa: BLE001
        return fail(f"transformers could not load {args.model}: {e}")
    archs = model.config.architectures or []
    if len(archs) != 1 or not archs[0].endswith("ForMaskedLM") or type(model).__name__ != archs[0]:
        return fail(f"config.architectures is {archs!r}, loaded as {type(model).__name__}")
    if not torch.equal(model.get_output_embeddings().weight, model.get_input_embeddings().weight):
        return fail("the decoder is not tied to the word embeddings")

    hf = []
    with torch.no_grad():
        for t in texts:
            # Burnish takes [MASK] for any model; transformers needs the model's own mask token.
            enc = tokenizer(t.replace("[MASK]", tokenizer.mask_token), return_tensors="pt")
            probs = model(**enc).logits[0].softmax(-1)
            where = (enc["input_ids"][0] == tokenizer.mask_token_id).nonzero().flatten().tolist()
            hf.append([(p, probs[p].topk(5)) for p in where])

    cmd = [args.burnish, "fill-mask", "--model", args.model, "--top-k", "5"]
    for t in texts:
        cmd += ["--text", t]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")
    if proc.returncode != 0:
        return fail(f"burnish fill-mask exited {proc.returncode}:\n{proc.stderr}")
    rows = [json.loads(ln) for ln in proc.stdout.splitlines() if ln.strip()]
    if len(rows) != len(texts):
        return fail(f"burnish printed {len(rows)} lines for {len(texts)} texts")

    worst, ok = 0.0, True
    for t, want, row in zip(texts, hf, rows):
        masks = row["masks"]
        if [m["position"] for m in masks] != [p for p, _ in want]:
            return fail(f"mask positions differ for {t!r}: {[m['position'] for m in masks]} vs {[p for p, _ in want]}")
        for m, (_, top) in zip(masks, want):
            ids = [c["id"] for c in m["candidates"]]
            scores = [c["score"] for c in m["candidates"]]
            diff = max(abs(a - b) for a, b in zip(scores, top.values.tolist()))
            worst = max(worst, diff)
            same = ids == top.indices.tolist() and diff < args.tol
            ok &= same
            tokens = [c["token"] for c in m["candidates"]]
            print(f"  {'ok' if same else 'MISMATCH':8} {t[:40]!r} @{m['position']}: {tokens} max|Δscore|={diff:.1e}")
    print(f"max score difference: {worst:.2e} (tolerance {args.tol:g})")
    if not ok:
        return fail("fill-mask differs between transformers and burnish")
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
