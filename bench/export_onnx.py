"""Exports the bundled all-MiniLM-L6-v2 checkpoint as the ONNX model Transformers.js runs, for the
browser benchmark's side-by-side (bench/browser.mjs): the same weights and the same computation
as Burnish's classifier forward pass (BertForSequenceClassification: encoder, pooler, a 2-label
head), fp32, dynamic batch and sequence axes. Needs torch, transformers and onnx from PyPI.

    python3 bench/export_onnx.py --model www/assets/models/all-MiniLM-L6-v2 --out DIR
writes DIR/config.json, DIR/tokenizer.json, DIR/tokenizer_config.json and DIR/onnx/model.onnx.
"""

import argparse
import os
import shutil

import torch
from transformers import AutoModelForSequenceClassification


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    torch.manual_seed(0)
    model = AutoModelForSequenceClassification.from_pretrained(a.model, num_labels=2).eval()
    os.makedirs(os.path.join(a.out, "onnx"), exist_ok=True)
    model.config.save_pretrained(a.out)
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt"):
        src = os.path.join(a.model, name)
        if os.path.exists(src):
            shutil.copy(src, os.path.join(a.out, name))
    ids = torch.ones(2, 16, dtype=torch.long)
    axes = {0: "batch", 1: "sequence"}
    torch.onnx.export(
        model,
        (ids, torch.ones_like(ids), torch.zeros_like(ids)),
        os.path.join(a.out, "onnx", "model.onnx"),
        input_names=["input_ids", "attention_mask", "token_type_ids"],
        output_names=["logits"],
        dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes, "logits": {0: "batch"}},
        opset_version=17,
        dynamo=False,
    )
    print(os.path.join(a.out, "onnx", "model.onnx"))


if __name__ == "__main__":
    main()
