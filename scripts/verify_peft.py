#!/usr/bin/env python3
"""Check that the PEFT adapter folder Burnish exports after a LoRA run loads with the `peft`
library on top of the base model and gives the same logits as Burnish.

    python3 scripts/verify_peft.py --export DIR --base BASE_DIR --burnish BIN [--tol 1e-4]

DIR is what `burnish train --strategy lora --out DIR` wrote: the merged HF folder and DIR/peft/.
Steps:
  1. The key names in DIR/peft/adapter_model.safetensors are exactly those peft itself saves for
     a model built with the same adapter_config.json (get_peft_model_state_dict), same shapes.
  2. base = AutoModelForSequenceClassification.from_pretrained(BASE, num_labels, id2label from
     DIR/config.json); PeftModel.from_pretrained(base, DIR/peft) in eval mode.
  3. Its logits must equal `BIN predict --model DIR` (the merged export) within --tol, and differ
     from the untouched base model's (the adapters did something).

Exit codes: 0 ok, 1 mismatch or failure, 2 peft/transformers/torch not installed.
"""

import argparse
import json
import os
import subprocess
import sys

# The same sentences and failure report as the merged-export check (same folder, on sys.path).
from verify_export import DEFAULT_TEXTS as TEXTS, fail  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description="Load a Burnish PEFT export with peft and compare logits.")
    ap.add_argument("--export", required=True)
    ap.add_argument("--base", required=True)
    ap.add_argument("--burnish", required=True)
    ap.add_argument("--tol", type=float, default=1e-4)
    args = ap.parse_args()
    try:
        import torch
        from peft import LoraConfig, PeftModel, get_peft_model
        from peft.utils import get_peft_model_state_dict
        from safetensors import safe_open
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
    except ImportError as e:
        print(f"peft not installed ({e}); pip install torch transformers peft", file=sys.stderr)
        return 2

    peft_dir = os.path.join(args.export, "peft")
    with open(os.path.join(args.export, "config.json")) as f:
        cfg = json.load(f)
    id2label = {int(k): v for k, v in cfg["id2label"].items()}
    # A base checkpoint with its own head of another size gets a new one (replaced by the adapter's).
    kw = dict(id2label=id2label, label2id={v: k for k, v in id2label.items()}, ignore_mismatched_sizes=True)

    def base_model():
        return AutoModelForSequenceClassification.from_pretrained(args.base, **kw).eval()

    # 1. Names and shapes as peft saves them.
    with open(os.path.join(peft_dir, "adapter_config.json")) as f:
        acfg = json.load(f)
    fields = {k: v for k, v in acfg.items() if k in LoraConfig.__dataclass_fields__ and k not in ("peft_type", "inference_mode")}
    ref = get_peft_model(base_model(), LoraConfig(**fields))
    want = {k: tuple(v.shape) for k, v in get_peft_model_state_dict(ref).items()}
    with safe_open(os.path.join(peft_dir, "adapter_model.safetensors"), "pt") as f:
        got = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    if got != want:
        return fail(f"tensor names/shapes differ from peft's:\n  only burnish: {sorted(set(got) - set(want))}\n"
                    f"  only peft: {sorted(set(want) - set(got))}\n"
                    f"  shape: {[(k, got[k], want[k]) for k in set(got) & set(want) if got[k] != want[k]]}")
    print(f"{len(got)} tensors, names and shapes as peft saves them")

    # 2. Load with peft.
    try:
        model = PeftModel.from_pretrained(base_model(), peft_dir).eval()
    except Exception as e:  # noqa: BLE001
        return fail(f"peft could not load {peft_dir}: {e}")
    tok = AutoTokenizer.from_pretrained(args.export)
    plain = base_model()
    peft_logits, base_logits = [], []
    with torch.no_grad():
        for t in TEXTS:
            enc = tok(t, truncation=True, max_length=128, return_tensors="pt")
            peft_logits.append(model(**enc).logits[0].tolist())
            base_logits.append(plain(**enc).logits[0].tolist())

    # 3. Compare with Burnish's merged export.
    cmd = [args.burnish, "predict", "--model", args.export, "--max-len", "128"]
    for t in TEXTS:
        cmd += ["--text", t]
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8")
    if proc.returncode != 0:
        return fail(f"burnish predict exited {proc.returncode}:\n{proc.stderr}")
    rows = [json.loads(ln) for ln in proc.stdout.splitlines() if ln.strip()]
    worst = max(abs(a - b) for p, r in zip(peft_logits, rows) for a, b in zip(p, r["logits"]))
    moved = max(abs(a - b) for p, q in zip(peft_logits, base_logits) for a, b in zip(p, q))
    print(f"peft vs burnish max |logit diff| {worst:.2e} (tol {args.tol:g}); peft vs base model {moved:.2e}")
    if worst >= args.tol:
        return fail("peft's logits differ from burnish's")
    if moved < 1e-3:
        return fail("the adapter did not change the base model's logits")
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
