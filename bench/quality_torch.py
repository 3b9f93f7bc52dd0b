#!/usr/bin/env python3
"""PyTorch reference for Burnish's quality bar: fine-tune all-MiniLM-L6-v2 on rotten tomatoes.

    python3 scripts/fetch_assets.py            # assets first
    python3 bench/quality_torch.py [--model DIR] [--train CSV] [--test CSV] [--threads N] \
        > bench/results/quality_torch.json

Recipe (the one Burnish's own fine-tuning is compared against):
  * BertForSequenceClassification from www/assets/models/all-MiniLM-L6-v2 with a new 2-label
    head; labels sorted alphabetically (negative=0, positive=1).
  * 2 epochs, batch 16, max_len 64 (truncation), dynamic padding (pad to the longest in a batch).
  * AdamW(lr 5e-5, betas (0.9, 0.999), eps 1e-8, weight_decay 0.01, on all parameters).
  * Linear warm-up over 10% of the total steps, then linear decay to 0
    (transformers.get_linear_schedule_with_warmup); clip_grad_norm_(1.0).
  * Seed 42; the training set is shuffled each epoch with a seeded torch.Generator;
    dropout on during training, eval mode for evaluation.
Progress goes to stderr; one JSON object goes to stdout:
  {"framework","accuracy","macro_f1","eval_loss","train_seconds","recipe":{...}}
"""

import argparse
import csv
import json
import math
import os
import random
import sys
import time

import torch
from transformers import AutoTokenizer, BertForSequenceClassification, get_linear_schedule_with_warmup
from transformers.utils import logging as hf_logging

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    return [r["text"] for r in rows], [r["label"] for r in rows]


def batches(n, batch_size, order=None):
    order = list(range(n)) if order is None else order
    for i in range(0, n, batch_size):
        yield order[i : i + batch_size]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=os.path.join(ROOT, "www/assets/models/all-MiniLM-L6-v2"))
    ap.add_argument("--train", default=os.path.join(ROOT, "www/assets/data/rt-train.csv"))
    ap.add_argument("--test", default=os.path.join(ROOT, "www/assets/data/rt-test.csv"))
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-len", type=int, default=64)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()

    recipe = {
        "model": "all-MiniLM-L6-v2",
        "epochs": args.epochs,
        "lr": args.lr,
        "batch_size": args.batch_size,
        "max_len": args.max_len,
        "padding": "dynamic (longest in batch)",
        "optimizer": "AdamW",
        "betas": [0.9, 0.999],
        "eps": 1e-8,
        "weight_decay": 0.01,
        "warmup_ratio": 0.1,
        "schedule": "linear warmup then linear decay to 0",
        "max_grad_norm": 1.0,
        "seed": args.seed,
        "dropout": "on during training (config default 0.1)",
    }

    torch.set_num_threads(args.threads)
    random.seed(args.seed)
    torch.manual_seed(args.seed)
    hf_logging.set_verbosity_error()

    train_x, train_y = read_csv(args.train)
    test_x, test_y = read_csv(args.test)
    labels = sorted(set(train_y))
    label2id = {lab: i for i, lab in enumerate(labels)}
    recipe["labels"] = labels
    recipe["train_rows"], recipe["test_rows"] = len(train_x), len(test_x)

    tokenizer = AutoTokenizer.from_pretrained(args.model)
    model = BertForSequenceClassification.from_pretrained(
        args.model,
        num_labels=len(labels),
        id2label={i: lab for lab, i in label2id.items()},
        label2id=label2id,
    )

    def encode(texts):
        return tokenizer(texts, padding=True, truncation=True, max_length=args.max_len, return_tensors="pt")

    steps_per_epoch = math.ceil(len(train_x) / args.batch_size)
    total_steps = steps_per_epoch * args.epochs
    optim = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01)
    sched = get_linear_schedule_with_warmup(optim, int(0.1 * total_steps), total_steps)
    gen = torch.Generator().manual_seed(args.seed)
    y_train = torch.tensor([label2id[y] for y in train_y])

    t0 = time.perf_counter()
    step = 0
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(len(train_x), generator=gen).tolist()
        running = 0.0
        for idx in batches(len(train_x), args.batch_size, order):
            enc = encode([train_x[i] for i in idx])
            logits = model(**enc).logits
            loss = torch.nn.functional.cross_entropy(logits, y_train[idx])
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optim.step()
            sched.step()
            optim.zero_grad()
            step += 1
            running += loss.item()
            if step % 25 == 0:
                print(
                    f"epoch {epoch + 1} step {step}/{total_steps} loss {running / 25:.4f} "
                    f"lr {sched.get_last_lr()[0]:.2e} {time.perf_counter() - t0:.0f}s",
                    file=sys.stderr,
                )
                running = 0.0
    train_seconds = time.perf_counter() - t0

    # Evaluation.
    model.eval()
    y_test = torch.tensor([label2id[y] for y in test_y])
    preds, loss_sum = [], 0.0
    with torch.no_grad():
        for idx in batches(len(test_x), 64):
            logits = model(**encode([test_x[i] for i in idx])).logits
            loss_sum += torch.nn.functional.cross_entropy(logits, y_test[idx], reduction="sum").item()
            preds += logits.argmax(-1).tolist()
    gold = y_test.tolist()
    accuracy = sum(p == g for p, g in zip(preds, gold)) / len(gold)
    f1s = []
    for c in range(len(labels)):
        tp = sum(p == c and g == c for p, g in zip(preds, gold))
        fp = sum(p == c and g != c for p, g in zip(preds, gold))
        fn = sum(p != c and g == c for p, g in zip(preds, gold))
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    result = {
        "framework": "pytorch",
        "torch_version": torch.__version__,
        "threads": args.threads,
        "accuracy": round(accuracy, 4),
        "macro_f1": round(sum(f1s) / len(f1s), 4),
        "eval_loss": round(loss_sum / len(gold), 4),
        "train_seconds": round(train_seconds, 1),
        "recipe": recipe,
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
