#!/usr/bin/env python3
"""Writes the golden files of the quantizer tests (tests/golden/kernels/quant_<type>.bin).

Inputs are f32 rows chosen to be awkward: Gaussian blocks, all-zero blocks, constant blocks, tiny and
large magnitudes (including scales that round to an fp16 subnormal or zero), all-positive and
all-negative blocks, a lone non-zero value, and values that land exactly on rounding ties.

Expected bytes come from implementations independent of llmopt:
  * Q8_0, Q4_0, Q4_1, Q5_0, Q5_1: gguf-py's NumPy quantizers (`gguf` on PyPI), which are written to
    be bit-exact with llama.cpp's quantize_row_*_ref. When a compiled llama.cpp is given (--ggml),
    its output must agree, or this script fails.
  * Q4_K, Q5_K, Q6_K: gguf-py has no quantizer for these, so they need --ggml: llama.cpp's own
    libggml-base.so, whose exported quantize_row_*_ref functions are called through ctypes.

Usage: python3 tools/gen_quant_goldens.py [--out tests/golden/kernels] [--seed 4321]
                                          [--ggml path/to/libggml-base.so]
Needs: pip install gguf numpy

File format: the "LLKG" quantize format of tools/gen_kernel_goldens.py (kind 1; src = n f32 values,
dst = the quantized row).
"""
import argparse
import ctypes
import os
import struct

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGML_QUANT_SIZES
from gguf import quants

KIND_QUANTIZE = 1
BLOCK32 = [T.Q8_0, T.Q4_0, T.Q4_1, T.Q5_0, T.Q5_1]
KQUANTS = [T.Q4_K, T.Q5_K, T.Q6_K]
GGML_FN = {T.Q8_0: "quantize_row_q8_0_ref", T.Q4_0: "quantize_row_q4_0_ref", T.Q4_1: "quantize_row_q4_1_ref",
           T.Q5_0: "quantize_row_q5_0_ref", T.Q5_1: "quantize_row_q5_1_ref", T.Q4_K: "quantize_row_q4_K_ref",
           T.Q5_K: "quantize_row_q5_K_ref", T.Q6_K: "quantize_row_q6_K_ref"}


def write_golden(path, type_id, src, dst):
    src = bytes(src)
    dst = bytes(dst)
    with open(path, "wb") as f:
        f.write(b"LLKG")
        f.write(struct.pack("<6I", 1, KIND_QUANTIZE, int(type_id), len(src) // 4, len(src), len(dst)))
        f.write(src)
        f.write(dst)


def awkward_blocks(rng, bs):
    """A list of f32 blocks of bs values each."""
    g = lambda s=1.0: (rng.standard_normal(bs) * s).astype(np.float32)
    blocks = [
        g(), g(0.02), g(3.0),
        np.zeros(bs, np.float32),
        np.full(bs, 0.75, np.float32), np.full(bs, -1.25, np.float32),
        g(1e-6), g(1e-12), g(1e-20),          # scales near / below the fp16 range
        g(200.0), g(1000.0),                  # large magnitudes (scales stay finite in fp16)
        np.abs(g()) + 0.5, -np.abs(g()) - 0.5,  # no zero crossing: all positive / all negative
        np.where(np.arange(bs) == bs // 3, np.float32(-2.5), np.float32(0)).astype(np.float32),
        # ties: with max |x| = 127 (Q8_0: d = 1) every k + 0.5 is a rounding tie
        np.concatenate([[127.0], (np.arange(bs - 1) - bs // 2) + 0.5]).astype(np.float32),
        # ties for the 4/5-bit types: max |x| = 8 or 16, grid of halves
        np.concatenate([[-8.0], ((np.arange(bs - 1) % 17) - 8) * 0.5]).astype(np.float32),
        np.concatenate([[16.0], ((np.arange(bs - 1) % 33) - 16) * 0.5]).astype(np.float32),
        # integers and a tie grid for the min/max types: range 15 or 31 starting at 0
        (np.arange(bs) % 16).astype(np.float32), ((np.arange(bs) % 32) * 0.5).astype(np.float32),
        # bf16-exact values like real checkpoints
        (g(0.05).view(np.uint32) & np.uint32(0xFFFF0000)).view(np.float32),
    ]
    for _ in range(8):
        blocks.append((rng.standard_normal(bs) * np.float32(2.0 ** rng.uniform(-8, 4))).astype(np.float32))
    return blocks


def make_input(rng, qtype):
    bs = GGML_QUANT_SIZES[qtype][0]
    if bs == 32:
        return np.concatenate(awkward_blocks(rng, 32)).astype(np.float32)
    # K-quants: super-blocks of 256 made of 32-value pieces (the sub-block size of Q4_K / Q5_K), so
    # each awkward pattern lands in whole sub-blocks; plus a few fully homogeneous super-blocks.
    pieces = awkward_blocks(rng, 32)
    rows = []
    for k in range(0, 4 * 8):
        rows.append(pieces[(k * 7) % len(pieces)])
    for p in (pieces[0], pieces[3], pieces[6], pieces[8], pieces[10], pieces[11], pieces[14]):
        rows.extend([p] * 8)
    rows.extend(awkward_blocks(rng, 256)[:6])
    return np.concatenate(rows).astype(np.float32)


def ggml_quantize(lib, qtype, x):
    bs, ts = GGML_QUANT_SIZES[qtype]
    fn = getattr(lib, GGML_FN[qtype])
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64]
    fn.restype = None
    out = np.zeros(x.size // bs * ts, dtype=np.uint8)
    xc = np.ascontiguousarray(x, dtype=np.float32)
    fn(xc.ctypes.data, out.ctypes.data, xc.size)
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/golden/kernels")
    ap.add_argument("--seed", type=int, default=4321)
    ap.add_argument("--ggml", default=None, help="llama.cpp's libggml-base.so (needed for Q4_K/Q5_K/Q6_K)")
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    lib = ctypes.CDLL(args.ggml) if args.ggml else None
    os.makedirs(args.out, exist_ok=True)
    for qtype in BLOCK32 + KQUANTS:
        x = make_input(rng, qtype)
        if qtype in BLOCK32:
            want = quants.quantize(x.reshape(1, -1), qtype).reshape(-1)
            source = "gguf-py"
            if lib is not None:
                got = ggml_quantize(lib, qtype, x)
                assert np.array_equal(got, want), f"gguf-py and libggml disagree on {qtype.name}"
                source += " == libggml"
        else:
            if lib is None:
                print(f"skip {qtype.name}: needs --ggml")
                continue
            want = ggml_quantize(lib, qtype, x)
            source = "libggml"
        path = os.path.join(args.out, f"quant_{qtype.name.lower()}.bin")
        write_golden(path, qtype, x.tobytes(), want.tobytes())
        print(f"wrote {path}: {x.size} values, {source}")


if __name__ == "__main__":
    main()
