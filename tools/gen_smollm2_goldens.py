#!/usr/bin/env python3
"""Generates tests/golden/tokenizer/smollm2.json: token ids of SmolLM2-135M-Instruct's tokenizer from
Hugging Face `tokenizers` as the independent reference.

The HF tokenizer is rebuilt from the GGUF's own vocabulary and merges with SmolLM2's tokenizer.json
configuration: BPE (no unk token), pre_tokenizer Sequence[Digits(individual_digits=True),
ByteLevel(add_prefix_space=False)], ByteLevel decoder, the control tokens (<|im_start|>, ...) as special
added tokens. (llama.cpp maps tokenizer.ggml.pre = "smollm" to the same split: "\\p{N}", then GPT-2's.)

Usage: make model && pip install tokenizers gguf && python3 tools/gen_smollm2_goldens.py [GGUF]
"""
import json
import os
import sys

import tokenizers
from gguf import GGUFReader
from tokenizers import AddedToken, Tokenizer, decoders, models, pre_tokenizers

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
GGUF_REL = ".cache/models/SmolLM2-135M-Instruct.Q4_1.gguf"
OUT = os.path.join(ROOT, "tests", "golden", "tokenizer", "smollm2.json")

TEXTS = [
    "Hello world",
    "The capital of France is",
    "12345",
    "3.14",
    "pi is 3.14159 and e is 2.71828",
    "In 2024, 1,000,000 people paid $19.99 each.",
    "x1 = y22 + z333",
    "I don't know, we've tried. They'll see.",
    "  leading and   multiple   spaces  ",
    "line1\nline2\n\nline4\n",
    "tab\tseparated\tvalues",
    "Caf\u00e9 na\u00efve r\u00e9sum\u00e9",
    "\u4f60\u597d\uff0c\u4e16\u754c \u0661\u0662\u0663 \u00bd",
    "emoji \U0001F600 and more",
    "def f(x):\n    return x ** 2  # square\n",
    "control \x04 byte and \x1d too",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
    "<|im_start|>system\nYou are a helpful AI assistant named SmolLM, trained by Hugging Face<|im_end|>\n",
    "Hello<|endoftext|>world",
    "<|im_end|><|im_end|> <|im_start|",
]


def field_strings(reader, key):
    f = reader.fields[key]
    return [bytes(f.parts[i]).decode("utf-8") for i in f.data]


def field_ints(reader, key):
    f = reader.fields[key]
    return [int(f.parts[i][0]) for i in f.data]


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, GGUF_REL)
    reader = GGUFReader(path)
    pre = bytes(reader.fields["tokenizer.ggml.pre"].parts[-1]).decode()
    assert pre == "smollm", pre
    tokens = field_strings(reader, "tokenizer.ggml.tokens")
    types = field_ints(reader, "tokenizer.ggml.token_type")
    merges = [tuple(m.split(" ", 1)) for m in field_strings(reader, "tokenizer.ggml.merges")]
    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token=None, fuse_unk=False))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Digits(individual_digits=True),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True),
    ])
    tok.decoder = decoders.ByteLevel()
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t, ty in zip(tokens, types) if ty == 3])
    for t, ty in zip(tokens, types):
        if ty == 3:
            assert tok.token_to_id(t) == vocab[t], t
    cases = []
    for text in TEXTS:
        ids = tok.encode(text, add_special_tokens=False).ids
        cases.append({"text": text, "ids": ids,
                      "decoded": tok.decode(ids, skip_special_tokens=True)})
    with open(OUT, "w", encoding="utf-8") as f:
        json.dump({
            "generator": "tools/gen_smollm2_goldens.py",
            "reference": "HF tokenizers %s" % tokenizers.__version__,
            "file": GGUF_REL,
            "cases": cases,
        }, f, ensure_ascii=False, indent=1)
        f.write("\n")
    print("wrote", OUT)


if __name__ == "__main__":
    main()
