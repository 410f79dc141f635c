#!/usr/bin/env python3
"""Generates tokenizer golden files with Hugging Face `tokenizers` as the independent reference:

  tests/golden/tokenizer/tinystories656k.json  TinyStories-656K tokenizer.json (SentencePiece-style BPE
                                               with byte_fallback and merges)
  tests/golden/tokenizer/gpt2_special.json     GPT-2 tokenizer.json with and without special-token parsing

Usage: pip install tokenizers && python3 tools/gen_tokenizer_goldens.py [DATA_DIR]
DATA_DIR defaults to ../shared/data relative to the repository root.
"""
import json
import os
import sys

import tokenizers
from tokenizers import Tokenizer

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "tests", "golden", "tokenizer")

TINYSTORIES_TEXTS = [
    "",
    " ",
    "   ",
    "a",
    "Hello world",
    " Hello world",
    "Hello   world",
    "  two leading spaces",
    "trailing spaces  ",
    "Once upon a time, there was a little girl named Lily.",
    "Lily and Ben are friends. They like to play in the park.",
    "\"Wow!\" said Tom. \"Look at the big, red ball!\"",
    "I don't know, we've tried.",
    "line1\nline2\n\nline4\n",
    "tab\tseparated\tvalues",
    "1234567890 and 3.14159",
    "HELLO WORLD",
    "antidisestablishmentarianism",
    "Caf\u00e9 na\u00efve r\u00e9sum\u00e9",
    "\u4f60\u597d\uff0c\u4e16\u754c",
    "emoji \U0001F600 \U0001F999 and more",
    "mixed \u4f60 and \u00e9 \u00e9\u00e9 unknowns",
    "The end.",
    "She was very happy. The dog barked and ran to the tree.",
    "\u2581already has a marker",
    "one. two! three? four, five; six: seven",
]

GPT2_SPECIAL_TEXTS = [
    "<|endoftext|>",
    "Hello<|endoftext|>world",
    "Hello <|endoftext|> world",
    "end.<|endoftext|>",
    "<|endoftext|><|endoftext|>",
    "a <|endoftext|>\n\nb",
    "no special here",
    "<|endoftext|",
]


def main():
    data = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared", "data")
    os.makedirs(OUT_DIR, exist_ok=True)

    rel = "models/tinystories-656k/tokenizer.json"
    tok = Tokenizer.from_file(os.path.join(data, rel))
    cases = []
    for text in TINYSTORIES_TEXTS:
        plain = tok.encode(text, add_special_tokens=False).ids
        with_bos = tok.encode(text, add_special_tokens=True).ids
        decoded = tok.decode(plain, skip_special_tokens=True)
        cases.append({"text": text, "ids": plain, "ids_with_bos": with_bos, "decoded": decoded})
    write("tinystories656k.json", {
        "generator": "tools/gen_tokenizer_goldens.py",
        "reference": "HF tokenizers %s" % tokenizers.__version__,
        "file": rel,
        "cases": cases,
    })

    rel = "tokenizers/gpt2/tokenizer.json"
    tok = Tokenizer.from_file(os.path.join(data, rel))
    tok.no_truncation()
    cases = []
    for text in GPT2_SPECIAL_TEXTS:
        tok.encode_special_tokens = False
        special = tok.encode(text, add_special_tokens=False).ids
        tok.encode_special_tokens = True
        plain = tok.encode(text, add_special_tokens=False).ids
        cases.append({"text": text, "ids_special": special, "ids_plain": plain})
    write("gpt2_special.json", {
        "generator": "tools/gen_tokenizer_goldens.py",
        "reference": "HF tokenizers %s" % tokenizers.__version__,
        "file": rel,
        "cases": cases,
    })


def write(name, obj):
    path = os.path.join(OUT_DIR, name)
    with open(path, "w", encoding="utf-8") as f:
        json.dump(obj, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print("wrote", path)


if __name__ == "__main__":
    main()
