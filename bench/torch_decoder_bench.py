#!/usr/bin/env python3
"""PyTorch counterpart of `burnish bench --model SmolLM2.gguf --strategy full|lora`.

    python3 bench/torch_decoder_bench.py --model www/assets/models/SmolLM2-135M-Instruct.Q4_1.gguf \
        [--strategy full|lora] [--batch-size 4] [--max-len 64] [--steps 3] [--warmup 1] \
        [--gen-tokens 32] [--threads N]

Loads the GGUF with transformers (`from_pretrained(..., gguf_file=...)`, dequantized to f32),
builds one fixed batch [B, L] of random token ids (seed 0, ids in [256, vocab)), runs `--warmup`
untimed training steps, then times `--steps`, each: forward, next-token cross-entropy,
backward, clip_grad_norm_(1.0), AdamW (lr 1e-4, weight decay 0.01), zero_grad. With
`--strategy lora`, peft's LoRA (rank 8, alpha 16, dropout 0.1 on q_proj and v_proj: Burnish's
defaults) wraps the model first. Then greedy generation of `--gen-tokens` tokens after the
first 16 ids of the batch's first row, with the KV cache, end of sequence ignored
(min_new_tokens = max_new_tokens). Prints one JSON object on stdout.
"""

import argparse
import json
import os
import statistics
import time

import torch
from transformers import AutoModelForCausalLM
from transformers.utils import logging as hf_logging


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", required=True)
    ap.add_argument("--strategy", choices=["full", "lora"], default="full")
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--max-len", type=int, default=64)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--gen-tokens", type=int, default=32)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    hf_logging.set_verbosity_error()

    folder, name = os.path.split(os.path.abspath(args.model))
    model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32, attn_implementation="eager")
    if args.strategy == "lora":
        from peft import LoraConfig, get_peft_model
        model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.1, target_modules=["q_proj", "v_proj"], task_type="CAUSAL_LM"))
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    vocab = model.config.vocab_size
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(256, vocab, (args.batch_size, args.max_len), generator=g)
    optim = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4, weight_decay=0.01, eps=1e-8)
    model.train()
    times = []
    for i in range(args.warmup + args.steps):
        t0 = time.perf_counter()
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in model.parameters() if p.requires_grad], 1.0)
        optim.step()
        optim.zero_grad(set_to_none=True)
        float(loss)
        if i >= args.warmup:
            times.append(time.perf_counter() - t0)
    median = statistics.median(times)

    model.eval()
    prompt = ids[:1, :16]
    with torch.no_grad():
        t0 = time.perf_counter()
        out = model.generate(input_ids=prompt, max_new_tokens=args.gen_tokens, min_new_tokens=args.gen_tokens, do_sample=False, use_cache=True, pad_token_id=0)
        gen_s = time.perf_counter() - t0
    new = out.shape[1] - prompt.shape[1]
    print(json.dumps({
        "framework": "pytorch", "torch_version": torch.__version__, "threads": args.threads,
        "strategy": args.strategy, "trainable": trainable,
        "training": {"batch_size": args.batch_size, "max_len": args.max_len, "steps": args.steps, "median_step_s": median,
                     "tokens_per_s": args.batch_size * args.max_len / median, "step_seconds": times},
        "prompt_tokens": 16, "generated_tokens": new, "generation_s": gen_s, "generation_tokens_per_s": new / gen_s,
    }, indent=1))


if __name__ == "__main__":
    main()
