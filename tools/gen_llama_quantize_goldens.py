#!/usr/bin/env python3
"""Writes the llama-quantize goldens of `llmopt quantize --type` (tests/golden/llama_quantize/*.txt).

For each input model, llama.cpp's own `llama-quantize` writes every file type llmopt's --type offers
(plain and --pure); this script records, per output tensor, its ggml type and a hash of its bytes.
tests/cli/quantize_golden_test.cc makes the same input with llmopt, runs `llmopt quantize` with the
same type and flag, and requires the same type and the same bytes for every tensor: the tensor-type
rules (head, tied embeddings, Q4_K_M / Q5_K_M mixes, fallbacks) and the quantizers are those of
llama.cpp.

Inputs (made with the llmopt binary, so the test can remake them):
  llama-tiny   `llmopt synth --preset llama-tiny` (F32, seed 1; tied head)
  gpt2-tiny    `llmopt synth --preset gpt2-tiny`  (F32, seed 1; position embeddings, fused qkv, biases)
  tinystories  `llmopt convert DATA/models/tinystories-656k --outtype f32` (real weights; rows of 128
               and 384, so every K-quant falls back)
The input's own tensor hashes are recorded too ("input" lines): when llmopt's synth or convert
changes, the test says the input changed instead of blaming the quantizer.

Usage:
  python3 tools/gen_llama_quantize_goldens.py --llmopt build/llmopt --llama-quantize PATH/llama-quantize \
      [--data ../shared/data] [--out tests/golden/llama_quantize] [--llama-version TEXT]
Needs: pip install gguf (gguf-py, to read llama-quantize's files); a llama.cpp build's llama-quantize.

File format (text): '#' comment lines, then one line per tensor: VARIANT NAME TYPE FNV1A64, where
VARIANT is "input" or the llama-quantize type name with "+pure" for --pure, TYPE the ggml type name
in lower case and FNV1A64 the 64-bit FNV-1a hash of the tensor's bytes in 16 hex digits.
"""
import argparse
import os
import subprocess
import sys
import tempfile

from gguf import GGUFReader

TYPES = ["F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q6_K", "Q4_K_M", "Q5_K_M"]


def fnv1a64(data: bytes) -> str:
    h = 0xCBF29CE484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return f"{h:016x}"


def tensor_lines(variant: str, path: str):
    lines = []
    for t in GGUFReader(path).tensors:
        lines.append(f"{variant} {t.name} {t.tensor_type.name.lower()} {fnv1a64(t.data.tobytes())}")
    return sorted(lines)


def run(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True, errors="replace")
    if r.returncode != 0:
        sys.exit(f"failed: {' '.join(cmd)}\n{r.stderr[-2000:]}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--llmopt", required=True)
    ap.add_argument("--llama-quantize", required=True)
    ap.add_argument("--data", default=os.path.join(os.path.dirname(__file__), "..", "..", "shared", "data"))
    ap.add_argument("--llama-version", default="version unknown",
                    help="which llama.cpp built llama-quantize (recorded in the files)")
    ap.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "tests", "golden", "llama_quantize"))
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        inputs = {
            "llama-tiny": [args.llmopt, "synth", "--preset", "llama-tiny", "-o"],
            "gpt2-tiny": [args.llmopt, "synth", "--preset", "gpt2-tiny", "-o"],
            "tinystories": [args.llmopt, "convert", os.path.join(args.data, "models", "tinystories-656k"),
                            "--outtype", "f32", "-o"],
        }
        for name, cmd in inputs.items():
            src = os.path.join(tmp, name + ".gguf")
            run(cmd + [src])
            lines = [f"# llama-quantize output for the {name} input; llama.cpp {args.llama_version}",
                     "# written by tools/gen_llama_quantize_goldens.py; format in its docstring"]
            lines += tensor_lines("input", src)
            for t in TYPES:
                for pure in (False, True):
                    out = os.path.join(tmp, "out.gguf")
                    run([args.llama_quantize] + (["--pure"] if pure else []) + [src, out, t, "2"])
                    lines += tensor_lines(t + ("+pure" if pure else ""), out)
            path = os.path.join(args.out, name + ".txt")
            with open(path, "w") as f:
                f.write("\n".join(lines) + "\n")
            print(f"wrote {path} ({len(lines)} lines)")


if __name__ == "__main__":
    main()
