#!/usr/bin/env python3
"""PyTorch counterpart of `burnish bench --model DIR --batch-size 16 --max-len 64 --steps 10`.

    python3 bench/torch_bench.py --model www/assets/models/all-MiniLM-L6-v2 \
        [--batch-size 16] [--max-len 64] [--steps 10] [--warmup 2] [--threads N]

Loads BertForSequenceClassification(num_labels=2) from DIR (a new random head when DIR has
none), builds one fixed batch [B, L] of random token ids (seed 0, ids in [1000, vocab)),
attention mask all ones and random labels, runs `--warmup` untimed steps, then times `--steps`
training steps, each: forward, cross-entropy, backward, clip_grad_norm_(1.0), AdamW step,
zero_grad. Prints one JSON object on stdout:
  {"framework","torch_version","threads","batch_size","max_len","steps",
   "median_step_s","samples_per_s","tokens_per_s"}
(samples_per_s and tokens_per_s are computed from the median step time).
"""

import argparse
import json
import os
import statistics
import sys
import time

import torch
from transformers import BertForSequenceClassification
from transformers.utils import logging as hf_logging


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-len", type=int, default=64)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    hf_logging.set_verbosity_error()  # "newly initialized classifier" notice
    model = BertForSequenceClassification.from_pretrained(args.model, num_labels=2)
    model.train()
    vocab = model.config.vocab_size

    gen = torch.Generator().manual_seed(0)
    b, l = args.batch_size, args.max_len
    input_ids = torch.randint(1000, vocab, (b, l), generator=gen)
    attention_mask = torch.ones(b, l, dtype=torch.long)
    labels = torch.randint(0, 2, (b,), generator=gen)
    optim = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.01, eps=1e-8)

    def step():
        logits = model(input_ids=input_ids, attention_mask=attention_mask).logits
        loss = torch.nn.functional.cross_entropy(logits, labels)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optim.step()
        optim.zero_grad()
        return loss.item()

    for _ in range(args.warmup):
        step()
    times = []
    for i in range(args.steps):
        t0 = time.perf_counter()
        loss = step()
        times.append(time.perf_counter() - t0)
        print(f"step {i + 1}/{args.steps}: {times[-1]:.3f} s, loss {loss:.4f}", file=sys.stderr)

    median = statistics.median(times)
    print(
        json.dumps(
            {
                "framework": "pytorch",
                "torch_version": torch.__version__,
                "threads": args.threads,
                "batch_size": b,
                "max_len": l,
                "steps": args.steps,
                "median_step_s": round(median, 4),
                "samples_per_s": round(b / median, 2),
                "tokens_per_s": round(b * l / median, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
