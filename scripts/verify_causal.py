#!/usr/bin/env python3
"""Check that a causal-LM folder exported by Burnish (`burnish train --task causal-lm|instruct`)
loads in Hugging Face transformers with `AutoModelForCausalLM` and generates exactly like Burnish.

    python3 scripts/verify_causal.py --model DIR --burnish BIN [--prompt TEXT ...] [--tokens N]

Steps:
  1. AutoModelForCausalLM.from_pretrained(DIR) must succeed with no missing or unexpected
     weights (a tied LM head is tied, not missing) and the class config.architectures names.
  2. For each prompt, transformers' greedy continuation (generate, do_sample=False) and
     `BIN generate --model DIR --prompt ... --json` must be the same token ids.

  3. With --peft-base BASE (a LoRA run): peft.PeftModel.from_pretrained(BASE model, DIR/peft)
     gives the merged folder's logits (within 1e-4) and greedy tokens for each prompt.

Exit codes: 0 ok, 1 mismatch or any failure, 2 transformers (or torch, or peft) not installed.
"""

import argparse
import json
import subprocess
import sys

DEFAULT_PROMPTS = ["Question: What colour is the sky?\nAnswer: ", "The film was great and"]


def fail(msg):
    print(f"FAIL: {msg}", file=sys.stderr)
    return 1


def main():
    ap = argparse.ArgumentParser(description="Compare a Burnish causal-LM export with transformers.")
    ap.add_argument("--model", required=True)
    ap.add_argument("--burnish", required=True)
    ap.add_argument("--prompt", action="append")
    ap.add_argument("--tokens", type=int, default=12)
    ap.add_argument("--peft-base", help="base model folder of a LoRA run: also check DIR/peft with peft")
    args = ap.parse_args()
    prompts = args.prompt or DEFAULT_PROMPTS
    try:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as e:
        print(f"transformers not installed ({e}); pip install torch transformers", file=sys.stderr)
        return 2

    try:
        model, info = AutoModelForCausalLM.from_pretrained(args.model, attn_implementation="eager", output_loading_info=True)
        tokenizer = AutoTokenizer.from_pretrained(args.model)
    except Exception as e:  # noqa: BLE001
        return fail(f"transformers could not load {args.model}: {e}")
    model.eval()
    if info.get("missing_keys") or info.get("unexpected_keys"):
        return fail(f"loading info: {info}")
    if type(model).__name__ not in (model.config.architectures or []):
        return fail(f"loaded as {type(model).__name__}, config says {model.config.architectures}")

    for p in prompts:
        ids = tokenizer(p, return_tensors="pt").input_ids
        with torch.no_grad():
            out = model.generate(ids, max_new_tokens=args.tokens, do_sample=False, pad_token_id=tokenizer.eos_token_id or 0)
        want = out[0, ids.shape[1]:].tolist()
        proc = subprocess.run(
            [args.burnish, "generate", "--model", args.model, "--prompt", p, "--max-new-tokens", str(args.tokens), "--json"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, encoding="utf-8",
        )
        if proc.returncode != 0:
            return fail(f"burnish generate exited {proc.returncode}:\n{proc.stderr}")
        got = json.loads(proc.stdout)
        if got["prompt_ids"] != ids[0].tolist():
            return fail(f"prompt {p!r}: burnish tokenized it as {got['prompt_ids']}, transformers as {ids[0].tolist()}")
        if got["ids"] != want:
            return fail(f"prompt {p!r}: burnish generated {got['ids']}, transformers {want}")
        print(f"ok: {p!r} -> {tokenizer.decode(want)!r}", file=sys.stderr)
    if args.peft_base:
        try:
            from peft import PeftModel
        except ImportError as e:
            print(f"peft not installed ({e}); pip install peft", file=sys.stderr)
            return 2
        import os
        base = AutoModelForCausalLM.from_pretrained(args.peft_base, attn_implementation="eager")
        try:
            adapted = PeftModel.from_pretrained(base, os.path.join(args.model, "peft")).eval()
        except Exception as e:  # noqa: BLE001
            return fail(f"peft could not load {args.model}/peft on {args.peft_base}: {e}")
        for p in prompts:
            ids = tokenizer(p, return_tensors="pt").input_ids
            with torch.no_grad():
                a, b = adapted(ids).logits, model(ids).logits
                worst = float((a - b).abs().max())
                if worst > 1e-4:
                    return fail(f"prompt {p!r}: PeftModel's logits differ from the merged folder's by {worst}")
                ga = adapted.generate(input_ids=ids, max_new_tokens=args.tokens, do_sample=False, pad_token_id=tokenizer.eos_token_id or 0)
                gb = model.generate(ids, max_new_tokens=args.tokens, do_sample=False, pad_token_id=tokenizer.eos_token_id or 0)
            if ga[0].tolist() != gb[0].tolist():
                return fail(f"prompt {p!r}: PeftModel generated {ga[0].tolist()}, the merged folder {gb[0].tolist()}")
            print(f"ok: peft adapter on {args.peft_base}: {p!r} (max logit difference {worst:.2e})", file=sys.stderr)
    print(f"PASS: {args.model} loads as {type(model).__name__} and generates like Burnish ({len(prompts)} prompts)", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
