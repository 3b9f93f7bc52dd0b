#!/usr/bin/env python3
"""Check that a model folder exported by Burnish loads in Hugging Face transformers and that
transformers and Burnish give the same logits.

    python3 scripts/verify_export.py --model DIR --burnish BIN [--text T ...] [--tol 1e-4] [--max-len 128]

Steps:
  1. AutoModelForSequenceClassification.from_pretrained(DIR) and AutoTokenizer.from_pretrained(DIR)
     must succeed, loading the class config.architectures names (e.g.
     ["BertForSequenceClassification"]), and config.id2label must be present.
  2. Each text is run through transformers on its own (no padding, truncated to
     min(--max-len, max_position_embeddings) tokens, as `burnish predict` does), in eval mode.
  3. `BIN predict --model DIR --max-len N --text T1 --text T2 ...` must print one JSON line per text:
     {"text", "label", "probabilities", "logits"}, in the order given.
  4. The largest absolute logit difference must be below --tol (default 1e-4).

Exit codes: 0 ok, 1 mismatch or any failure, 2 transformers (or torch) not installed.
"""

import argparse
import json
import subprocess
import sys

DEFAULT_TEXTS = [
    "This movie was absolutely wonderful, I loved every minute of it.",
    "The plot was boring and the acting was terrible.",
    "It was fine.",
    "Café déjà vu: a naïve but charming film 😀",
    "Despite a slow start, the story builds to a moving and beautiful ending.",
]


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    return 1


def main():
    ap = argparse.ArgumentParser(description="Compare a Burnish export with transformers.")
    ap.add_argument("--model", required=True, help="exported model folder")
    ap.add_argument("--burnish", required=True, help="path to the burnish binary")
    ap.add_argument("--text", action="append", help="text to compare (repeatable; default: 5 sentences)")
    ap.add_argument("--tol", type=float, default=1e-4, help="max allowed |logit difference|")
    ap.add_argument("--max-len", type=int, default=128, help="truncation length, passed to burnish too")
    args = ap.parse_args()
    texts = args.text or DEFAULT_TEXTS

    try:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
    except ImportError as e:
        print(f"transformers not installed ({e}); pip install torch transformers", file=sys.stderr)
        return 2

    # 1. Load with transformers.
    try:
        model = AutoModelForSequenceClassification.from_pretrained(args.model).eval()
        tokenizer = AutoTokenizer.from_pretrained(args.model)
    except Exception as e:  # noqa: BLE001 - report any loading error
        return fail(f"transformers could not load {args.model}: {e}")
    archs = getattr(model.config, "architectures", None)
    if not archs or len(archs) != 1 or archs[0] != type(model).__name__ or not archs[0].endswith("ForSequenceClassification"):
        return fail(f"config.architectures is {archs!r}, loaded as {type(model).__name__}")
    id2label = getattr(model.config, "id2label", None)
    if not id2label:
        return fail("config.id2label missing")
    print(f"loaded {args.model}: {type(model).__name__}, labels {dict(id2label)}")

    # 2. transformers logits, one text at a time.
    # Long texts are truncated to min(--max-len, max_position_embeddings), as `burnish predict` does.
    # (RoBERTa's positions start after pad_token_id: 514 rows hold 512 tokens.)
    offset = model.config.pad_token_id + 1 if model.config.model_type in ("roberta", "xlm-roberta") else 0
    max_len = min(args.max_len, model.config.max_position_embeddings - offset)
    hf_logits = []
    try:
        with torch.no_grad():
            for t in texts:
                enc = tokenizer(t, truncation=True, max_length=max_len, return_tensors="pt")
                hf_logits.append(model(**enc).logits[0].tolist())
    except Exception as e:  # noqa: BLE001
        return fail(f"transformers forward failed: {e}")

    # 3. Burnish logits.
    cmd = [args.burnish, "predict", "--model", args.model, "--max-len", str(args.max_len)]
    for t in texts:
        cmd += ["--text", t]
    try:
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")
    except OSError as e:
        return fail(f"could not run {args.burnish}: {e}")
    if proc.returncode != 0:
        return fail(f"burnish predict exited {proc.returncode}:\n{proc.stderr}")
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    if len(lines) != len(texts):
        return fail(f"burnish printed {len(lines)} lines for {len(texts)} texts:\n{proc.stdout}")
    try:
        rows = [json.loads(ln) for ln in lines]
    except json.JSONDecodeError as e:
        return fail(f"burnish output is not JSON Lines: {e}\n{proc.stdout}")

    # 4. Compare.
    worst = 0.0
    ok = True
    for t, hf, row in zip(texts, hf_logits, rows):
        if row.get("text") != t:
            print(f"  warning: burnish echoed text {row.get('text')!r} for {t!r}", file=sys.stderr)
        bl = row.get("logits")
        if not isinstance(bl, list) or len(bl) != len(hf):
            ok = False
            print(f"  MISMATCH shape for {t!r}: transformers {len(hf)} logits, burnish {bl!r}")
            continue
        diff = max(abs(a - b) for a, b in zip(hf, bl))
        worst = max(worst, diff)
        hf_label = id2label[max(range(len(hf)), key=hf.__getitem__)]
        status = "ok" if diff < args.tol else "MISMATCH"
        ok &= diff < args.tol
        print(f"  {status:8} max|diff|={diff:.2e}  hf={hf_label!r:12} burnish={row.get('label')!r:12} {t[:50]!r}")
        if row.get("label") != hf_label:
            print(f"           (label differs: transformers {hf_label!r}, burnish {row.get('label')!r})")

    print(f"max abs logit difference over {len(texts)} texts: {worst:.3e} (tolerance {args.tol:g})")
    if not ok:
        return fail("logits differ between transformers and burnish")
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
