#!/usr/bin/env python3
# Written by Burnish: the recipe of a fine-tuning run in the studio, as a Hugging Face Trainer
# (+ PEFT for LoRA) script, for when a run outgrows the browser tab.
#
#   pip install "transformers>=4.46" datasets accelerate peft torch
#   python train.py                      # one GPU, or the CPU
#   accelerate launch train.py           # several GPUs or machines (`accelerate config` first)
#
# Every setting below is the recipe's; the command line overrides the data files, the model and
# where the result goes (python train.py --help). The evaluation split is a seeded, stratified
# share of the training data as in Burnish (the same share and seed; datasets' own shuffle, so
# not the same rows).
import argparse
import inspect
import json
import math
import os
import re

RECIPE = json.loads(r"""__RECIPE_JSON__""")


def parse_args():
    ap = argparse.ArgumentParser(description="Fine-tune " + RECIPE["model"] + " with the recipe exported from Burnish.")
    ap.add_argument("--model", default=RECIPE["model"], help="Hub id or local folder of the pretrained model")
    ap.add_argument("--train", nargs="+", default=RECIPE["train_files"], help="training file(s): CSV, TSV, JSON Lines, Parquet or text")
    ap.add_argument("--eval", default=RECIPE["eval_file"], help="a separate evaluation file (else a held-out share of the training data)")
    ap.add_argument("--output-dir", default="burnish-run", help="where checkpoints, the final model and param_groups.json go")
    ap.add_argument("--max-steps", type=int, default=-1, help="stop after this many optimizer steps (for a quick check)")
    return ap.parse_args()


def data_format(path):
    p = path.lower()
    if p.endswith((".tsv", ".tab")):
        return "csv", {"delimiter": "\t"}
    if p.endswith((".jsonl", ".json", ".ndjson")):
        return "json", {}
    if p.endswith((".parquet", ".pq")):
        return "parquet", {}
    if p.endswith((".txt", ".text")):
        return "text", {}
    return "csv", {}


def load_table(paths):
    import datasets

    parts = []
    for path in paths:
        kind, kw = data_format(path)
        parts.append(datasets.load_dataset(kind, data_files=path, split="train", **kw))
    return parts


def main():
    args = parse_args()
    import datasets
    import numpy as np
    import torch
    import transformers
    from transformers import AutoModelForSequenceClassification, AutoTokenizer, DataCollatorWithPadding, Trainer, TrainerCallback, TrainingArguments

    r = RECIPE["recipe"]
    text_col, label_col = r["text_column"], r["label_column"]
    transformers.set_seed(r["seed"])

    # Data: rows with an empty text or label are skipped, as in Burnish; labels sorted by name.
    def usable(ds):
        return ds.filter(lambda row: row[text_col] not in (None, "") and row[label_col] not in (None, ""))

    train_parts = [usable(d) for d in load_table(args.train)]
    labels = sorted({str(v) for d in train_parts for v in d[label_col]})
    label2id = {l: i for i, l in enumerate(labels)}
    if len(train_parts) > 1:
        sizes = [len(d) for d in train_parts]
        weights = r["mix_weights"] or [n ** (1.0 / r["mix_temperature"]) for n in sizes]
        probs = [w / sum(weights) for w in weights]
        train = datasets.interleave_datasets(train_parts, probabilities=probs, seed=r["seed"], stopping_strategy="all_exhausted")
    else:
        train = train_parts[0]
    features = datasets.ClassLabel(names=labels)
    train = train.map(lambda row: {"label": label2id[str(row[label_col])]}).cast_column("label", features)
    if args.eval:
        ev = usable(load_table([args.eval])[0])
        unseen = sorted({str(v) for v in ev[label_col]} - set(labels))
        if unseen:
            raise SystemExit(f"the evaluation data has labels the training data does not: {', '.join(unseen)}")
        ev = ev.map(lambda row: {"label": label2id[str(row[label_col])]}).cast_column("label", features)
    else:
        split = train.train_test_split(test_size=r["eval_fraction"], seed=r["seed"], stratify_by_column="label")
        train, ev = split["train"], split["test"]

    tok = AutoTokenizer.from_pretrained(args.model)

    def encode(batch):
        return tok(batch[text_col], truncation=True, max_length=r["max_len"])

    keep = ["label"]
    train = train.map(encode, batched=True, remove_columns=[c for c in train.column_names if c not in keep])
    ev = ev.map(encode, batched=True, remove_columns=[c for c in ev.column_names if c not in keep])

    model = AutoModelForSequenceClassification.from_pretrained(
        args.model, num_labels=len(labels), id2label=dict(enumerate(labels)), label2id=label2id, ignore_mismatched_sizes=True
    )

    # Layer groups, top first, as Burnish lists them: the head (everything outside the encoder's
    # embeddings and layers: classifier, pooler, pre_classifier), encoder layers from the top,
    # the embeddings. Group d learns at lr * layer_lr_decay**d.
    base = model.base_model
    layers = list((base.encoder if hasattr(base, "encoder") else base.transformer).layer)
    group_of = {}
    for p in base.embeddings.parameters():
        group_of[id(p)] = len(layers) + 1
    for i, layer in enumerate(layers):
        for p in layer.parameters():
            group_of[id(p)] = len(layers) - i
    names = ["head"] + [f"encoder layer {i}" for i in reversed(range(len(layers)))] + ["embeddings"]

    strategy = r["strategy"]
    if strategy == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(model, LoraConfig(
            task_type="SEQ_CLS", r=r["lora_rank"], lora_alpha=r["lora_alpha"], lora_dropout=r["lora_dropout"],
            target_modules=RECIPE["lora_target_modules"], modules_to_save=RECIPE["lora_modules_to_save"],
        ))
        # Adapters learn at the rate of the layer they sit in; the head's copies at the head's.
        for name, p in model.named_parameters():
            m = re.search(r"\.layer\.(\d+)\.", name)
            if m and "lora_" in name:
                group_of[id(p)] = len(layers) - int(m.group(1))

    n_groups = len(layers) + 2
    max_groups = {"full": n_groups, "head": 1, "top": 1 + min(r["top_layers"], len(layers)), "lora": 1}[strategy]

    def set_trainable(n):
        """The top n groups train (the embeddings not when freeze_embeddings); with LoRA, only the
        adapters and the head."""
        if strategy == "lora":
            return
        for p in model.parameters():
            g = group_of.get(id(p), 0)
            p.requires_grad_(g < n and not (g == n_groups - 1 and r["freeze_embeddings"]))

    def wanted(step, epoch):
        if not r["gradual_unfreeze"]:
            return max_groups
        unfrozen = step // r["unfreeze_every"] if r["unfreeze_every"] > 0 else epoch
        return min(1 + unfrozen, max_groups)

    set_trainable(wanted(0, 0))

    # AdamW with one parameter group per layer group (weight decay on every parameter, as Burnish).
    groups = {}
    for p in model.parameters():
        if strategy == "lora" and not p.requires_grad:
            continue
        groups.setdefault(group_of.get(id(p), 0), []).append(p)
    param_groups = [
        {"params": ps, "lr": r["lr"] * r["layer_lr_decay"] ** g, "weight_decay": r["weight_decay"], "burnish_group": names[g]}
        for g, ps in sorted(groups.items())
    ]
    optimizer = torch.optim.AdamW(param_groups, lr=r["lr"], betas=(0.9, 0.999), eps=1e-8, weight_decay=r["weight_decay"])
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "param_groups.json"), "w") as f:
        json.dump([{"group": g["burnish_group"], "lr": g["lr"], "parameters": sum(p.numel() for p in g["params"])} for g in param_groups], f, indent=1)

    class GradualUnfreezing(TrainerCallback):
        def on_step_begin(self, targs, state, control, **kw):
            epoch = int(state.epoch or 0)
            set_trainable(wanted(state.global_step, epoch))

    metric = {"accuracy": "accuracy", "macro_f1": "macro_f1", "loss": "loss"}[r["early_stopping_metric"]]

    def compute_metrics(pred):
        guess = np.argmax(pred.predictions, axis=-1)
        gold = pred.label_ids
        f1s = []
        for c in range(len(labels)):
            tp = int(((guess == c) & (gold == c)).sum())
            fp = int(((guess == c) & (gold != c)).sum())
            fn = int(((guess != c) & (gold == c)).sum())
            f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
        return {"accuracy": float((guess == gold).mean()), "macro_f1": float(np.mean(f1s))}

    every = r["eval_every"]
    # transformers 5 takes the warm-up ratio as a float warmup_steps; 4.x as warmup_ratio.
    if "warmup_ratio" in inspect.signature(TrainingArguments.__init__).parameters:
        warmup = {"warmup_ratio": r["warmup_ratio"]}
    else:
        warmup = {"warmup_steps": float(r["warmup_ratio"])}
    targs = TrainingArguments(
        output_dir=args.output_dir,
        num_train_epochs=r["epochs"],
        max_steps=args.max_steps,
        per_device_train_batch_size=r["batch_size"],
        per_device_eval_batch_size=max(r["batch_size"], 32),
        gradient_accumulation_steps=r["grad_accum"],
        learning_rate=r["lr"],
        weight_decay=r["weight_decay"],
        adam_beta1=0.9,
        adam_beta2=0.999,
        adam_epsilon=1e-8,
        max_grad_norm=r["max_grad_norm"] if r["max_grad_norm"] > 0 else 0.0,
        lr_scheduler_type={"linear": "linear", "cosine": "cosine", "constant": "constant_with_warmup"}[r["schedule"]],
        **warmup,
        eval_strategy="steps" if every > 0 else "epoch",
        eval_steps=every if every > 0 else None,
        save_strategy="steps" if every > 0 else "epoch",
        save_steps=every if every > 0 else None,
        save_total_limit=2,
        load_best_model_at_end=r["early_stopping_patience"] > 0,
        metric_for_best_model=metric,
        greater_is_better=metric != "loss",
        logging_steps=1,
        seed=r["seed"],
        data_seed=r["seed"],
        report_to=[],
    )
    callbacks = [GradualUnfreezing()]
    if r["early_stopping_patience"] > 0:
        from transformers import EarlyStoppingCallback

        callbacks.append(EarlyStoppingCallback(early_stopping_patience=r["early_stopping_patience"]))
    trainer = Trainer(
        model=model,
        args=targs,
        train_dataset=train,
        eval_dataset=ev,
        data_collator=DataCollatorWithPadding(tok),
        compute_metrics=compute_metrics,
        optimizers=(optimizer, None),
        callbacks=callbacks,
    )
    trainer.train()
    final = os.path.join(args.output_dir, "final")
    trainer.save_model(final)
    tok.save_pretrained(final)
    metrics = trainer.evaluate()
    print(json.dumps({k: v for k, v in metrics.items() if isinstance(v, (int, float)) and math.isfinite(v)}))


if __name__ == "__main__":
    main()
