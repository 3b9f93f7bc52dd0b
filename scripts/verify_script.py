#!/usr/bin/env python3
"""Check that a training script exported by Burnish (`burnish export-script`, or the page's
"Export as a training script") trains with the recipe's settings under the Hugging Face Trainer.

    python3 scripts/verify_script.py --burnish BIN --model tests/fixtures/tiny-bert --train tests/data/studio-train.csv

Three recipes, each exported by BIN and run on the CPU for a step or two (`--max-steps`), with
weight decay and warm-up off so that AdamW's first update of every weight is ±lr of its group:
  1. full fine-tuning, layer_lr_decay 0.5, freeze_embeddings: the embeddings stay bit-identical;
     the head, the top layer and the layer below it move by lr, lr/2 and lr/4 (median |Δw| of the
     weights whose gradient is not zero, within 2 %);
  2. top 1 layer with gradual unfreezing every step, two steps: the bottom layer and the
     embeddings stay bit-identical, the top layer moves (it unfreezes at step 1);
  3. LoRA on query/value: every pretrained encoder weight stays bit-identical in the merged
     model, the adapters' B factors are no longer zero, and peft loads the saved adapter.

Exit codes: 0 ok, 1 mismatch or failure, 2 torch/transformers/datasets/peft not installed.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    return 1


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--burnish", required=True)
    ap.add_argument("--model", required=True)
    ap.add_argument("--train", required=True)
    args = ap.parse_args()
    try:
        import datasets  # noqa: F401
        import peft  # noqa: F401
        import torch
        from transformers import AutoModel
    except ImportError as e:
        print(f"not installed ({e}); pip install torch transformers datasets peft", file=sys.stderr)
        return 2

    lr = 1e-3
    common = ["--text-column", "phrase", "--label-column", "polarity", "--lr", str(lr), "--weight-decay", "0", "--warmup-ratio", "0", "--batch-size", "8", "--max-len", "32", "--seed", "7", "--epochs", "1"]
    base = AutoModel.from_pretrained(args.model)
    base_sd = {k: v.clone() for k, v in base.state_dict().items()}
    prefix = base.base_model_prefix + "."

    def run(name, flags, steps):
        out = tempfile.mkdtemp(prefix=f"script-{name}-")
        script = os.path.join(out, "train.py")
        cmd = [args.burnish, "export-script", "--model", args.model, "--train", args.train, "--out", script, *common, *flags]
        p = subprocess.run(cmd, capture_output=True, text=True)
        if p.returncode != 0:
            raise SystemExit(fail(f"{' '.join(cmd)} exited {p.returncode}: {p.stderr}"))
        p = subprocess.run([sys.executable, script, "--output-dir", os.path.join(out, "run"), "--max-steps", str(steps)], capture_output=True, text=True,
                           env={**os.environ, "CUDA_VISIBLE_DEVICES": "", "TOKENIZERS_PARALLELISM": "false"})
        if p.returncode != 0:
            raise SystemExit(fail(f"the exported script ({name}) exited {p.returncode}:\n{p.stderr[-3000:]}"))
        with open(os.path.join(out, "run", "param_groups.json")) as f:
            groups = json.load(f)
        return os.path.join(out, "run", "final"), groups

    def encoder_state(folder):
        m = AutoModel.from_pretrained(folder)
        return {k: v for k, v in m.state_dict().items()}

    def delta(sd, key):
        d = (sd[key] - base_sd[key]).abs().flatten()
        d = d[d > 0]
        return float(d.median()) if d.numel() else 0.0

    layers = sorted({int(k.split(".")[2]) for k in base_sd if ".layer." in k})
    top, bottom = layers[-1], layers[0]
    layer_key = lambda i: next(k for k in base_sd if f"layer.{i}." in k and k.endswith("weight") and base_sd[k].dim() == 2)  # noqa: E731
    emb_keys = [k for k in base_sd if k.startswith("embeddings.")]

    # 1. Full, discriminative rates, frozen embeddings.
    final, groups = run("full", ["--strategy", "full", "--layer-lr-decay", "0.5", "--freeze-embeddings"], 1)
    names = [g["group"] for g in groups]
    want = ["head"] + [f"encoder layer {i}" for i in reversed(layers)] + ["embeddings"]
    if names != want:
        return fail(f"parameter groups {names}, expected {want}")
    for g, d in zip(groups, range(len(groups))):
        if abs(g["lr"] - lr * 0.5 ** d) > 1e-12:
            return fail(f"group {g['group']}: lr {g['lr']}, expected {lr * 0.5 ** d}")
    sd = encoder_state(final)
    for k in emb_keys:
        if not torch.equal(sd[k], base_sd[k]):
            return fail(f"{k} changed although the embeddings are frozen")
    for i, depth in [(top, 1), (layers[-2] if len(layers) > 1 else top, 2 if len(layers) > 1 else 1)]:
        got = delta(sd, layer_key(i)) / lr
        if abs(got - 0.5 ** depth) > 0.02 * 0.5 ** depth:
            return fail(f"layer {i}: first update {got:.4f}·lr, expected {0.5 ** depth}·lr")
        print(f"  layer {i}: first AdamW update {got:.4f}·lr (expected {0.5 ** depth})")
    print("full: groups, rates and frozen embeddings as the recipe says")

    # 2. Top layer with gradual unfreezing.
    final, groups = run("top", ["--strategy", "top", "--top-layers", "1", "--gradual-unfreeze", "--unfreeze-every", "1"], 2)
    sd = encoder_state(final)
    for k in [k for k in base_sd if f"layer.{bottom}." in k] + emb_keys:
        if not torch.equal(sd[k], base_sd[k]):
            return fail(f"{k} changed although only the top layer trains")
    if delta(sd, layer_key(top)) == 0.0:
        return fail(f"layer {top} did not move after it unfroze")
    print("top + gradual unfreezing: the bottom layer and the embeddings unchanged, the top layer moved")

    # 3. LoRA.
    final, groups = run("lora", ["--strategy", "lora", "--lora-rank", "4", "--lora-targets", "query,value"], 2)
    from peft import PeftModel
    from transformers import AutoModelForSequenceClassification

    cfg = json.load(open(os.path.join(final, "adapter_config.json")))
    clf = AutoModelForSequenceClassification.from_pretrained(args.model, num_labels=2, ignore_mismatched_sizes=True)
    model = PeftModel.from_pretrained(clf, final)
    moved = [n for n, p in model.named_parameters() if "lora_B" in n and float(p.abs().max()) > 0]
    if not moved:
        return fail("no LoRA B factor moved")
    adapters = {n: p for n, p in model.named_parameters() if "lora_" in n}
    for n, p in model.named_parameters():
        key = n.split(prefix, 1)[-1].replace("base_layer.", "")
        if "lora_" in n or key not in base_sd:
            continue
        if not torch.equal(p.detach(), base_sd[key]):
            return fail(f"{key} changed under LoRA")
    print(f"lora: {len(adapters)} adapter tensors ({len(moved)} B factors moved), targets {cfg['target_modules']}; every pretrained weight unchanged")
    print("PASS")
    return 0


if __name__ == "__main__":
    sys.exit(main())
