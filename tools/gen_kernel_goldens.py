#!/usr/bin/env python3
"""Writes the golden files of the kernels tests (tests/golden/kernels/*.bin).

The expected values come from implementations independent of llmopt: gguf-py's NumPy dequantizers
(the `gguf` package on PyPI) for the quantized block types and BF16, and NumPy's float16 for half
floats. bf16 rounding is computed here with NumPy bit arithmetic (round to nearest even, NaN kept
quiet) and cross-checked against gguf-py's BF16 quantizer.

Usage: python3 tools/gen_kernel_goldens.py [--out tests/golden/kernels] [--seed 1234]
Needs: pip install gguf numpy

File format (all little-endian):
  char[4] magic "LLKG"; u32 version = 1; u32 kind (0 = dequantize, 1 = quantize); u32 ggml type id;
  u32 n (elements); u32 src_bytes; u32 dst_bytes; src bytes; dst bytes.
  Dequantize: src = raw rows of the type, dst = n f32 values. Quantize: src = n f32, dst = raw rows.
"""
import argparse
import os
import struct

import numpy as np
from gguf import GGMLQuantizationType as T
from gguf import GGML_QUANT_SIZES
from gguf import quants

KIND_DEQUANTIZE = 0
KIND_QUANTIZE = 1

# Byte offsets of the fp16 scale fields inside one block (ggml-common.h layouts).
SCALE_OFFSETS = {
    T.Q8_0: [0],
    T.Q4_0: [0],
    T.Q4_1: [0, 2],
    T.Q5_0: [0],
    T.Q5_1: [0, 2],
    T.Q4_K: [0, 2],
    T.Q5_K: [0, 2],
    T.Q6_K: [208],
}
N_BLOCKS = {T.Q8_0: 16, T.Q4_0: 16, T.Q4_1: 16, T.Q5_0: 16, T.Q5_1: 16, T.Q4_K: 6, T.Q5_K: 6, T.Q6_K: 6}


def write_golden(path, kind, type_id, n, src, dst):
    src = bytes(src)
    dst = bytes(dst)
    with open(path, "wb") as f:
        f.write(b"LLKG")
        f.write(struct.pack("<6I", 1, kind, int(type_id), n, len(src), len(dst)))
        f.write(src)
        f.write(dst)


def sane_half(rng, i):
    """A finite fp16 scale. A few fixed special cases, then random magnitudes in [2^-12, 2^1)."""
    specials = [0.0, -0.0, 6.0e-8, -1.0e-6, 1.0, -0.5]  # includes fp16 subnormals
    if i < len(specials):
        v = specials[i]
    else:
        v = float(rng.choice([-1.0, 1.0]) * 2.0 ** rng.uniform(-12.0, 1.0))
    return np.array([v], dtype=np.float16).view(np.uint8)


def gen_dequant(rng, out_dir, qtype):
    block_size, type_size = GGML_QUANT_SIZES[qtype]
    n_blocks = N_BLOCKS[qtype]
    raw = rng.integers(0, 256, size=(n_blocks, type_size), dtype=np.uint8)
    k = 0
    for b in range(n_blocks):
        for off in SCALE_OFFSETS[qtype]:
            raw[b, off:off + 2] = sane_half(rng, k)
            k += 1
    expected = quants.dequantize(raw.reshape(-1), qtype).astype(np.float32).reshape(-1)
    n = n_blocks * block_size
    assert expected.size == n and np.all(np.isfinite(expected))
    write_golden(os.path.join(out_dir, f"dequant_{qtype.name.lower()}.bin"), KIND_DEQUANTIZE, qtype, n,
                 raw.tobytes(), expected.tobytes())


def half_inputs(rng):
    """Half bit patterns covering every sign/exponent pair: zero, subnormals, normals, inf, NaN."""
    out = []
    for sign in (0, 1):
        for exp in range(32):
            mants = [0, 1, 0x200, 0x3FF] + list(rng.integers(0, 0x400, size=12))
            for m in mants:
                out.append((sign << 15) | (exp << 10) | int(m))
    return np.array(out, dtype=np.uint16)


def f32_inputs_for_narrowing(rng, mant_bits):
    """f32 values that exercise rounding to a format with `mant_bits` mantissa bits: exact ties,
    just-above/below ties, random low bits, plus specials. Returned as uint32 bit patterns."""
    drop = 23 - mant_bits
    half_ulp = 1 << (drop - 1)
    vals = []
    # Random f32 across a wide exponent range (covers fp16 subnormal/overflow, f32 subnormals).
    for _ in range(400):
        e = int(rng.integers(1, 255))
        m = int(rng.integers(0, 1 << 23))
        s = int(rng.integers(0, 2))
        vals.append((s << 31) | (e << 23) | m)
    # Ties and near-ties on values that are exactly representable in the narrow format.
    for _ in range(300):
        e = int(rng.integers(100, 150))
        m = int(rng.integers(0, 1 << mant_bits)) << drop
        s = int(rng.integers(0, 2))
        base = (s << 31) | (e << 23) | m
        for delta in (half_ulp, half_ulp - 1, half_ulp + 1, 0):
            vals.append(base + delta)
    specials = [
        0x00000000, 0x80000000,  # +-0
        0x7F800000, 0xFF800000,  # +-inf
        0x7FC00000, 0xFFC00000, 0x7F800001, 0x7FBFFFFF, 0xFFA00001,  # quiet and signalling NaNs
        0x00000001, 0x807FFFFF, 0x00400000,  # f32 subnormals
        0x7F7FFFFF, 0xFF7FFFFF,  # f32 max
        0x3F800000, 0x3F801000, 0x3F803000, 0x3F801001, 0x3F800FFF,  # 1 + fp16 ties
        0x3F808000, 0x3F818000, 0x3F808001, 0x3F807FFF,  # 1 + bf16 ties
    ]
    # fp16 boundaries: max 65504, the overflow tie 65520, smallest normal / subnormal and their ties.
    fp16_edges = [65504.0, 65519.0, 65519.996, 65520.0, 65536.0, 1e10, 2.0 ** -14, 2.0 ** -14 * (1 - 2 ** -12),
                  2.0 ** -24, 2.0 ** -25, 2.0 ** -25 * 1.0001, 3 * 2.0 ** -25, 5 * 2.0 ** -25, 2.0 ** -26,
                  2.0 ** -14 - 2.0 ** -25, 1023.5 * 2.0 ** -24, 1.0 / 3.0]
    edge_bits = np.array(fp16_edges, dtype=np.float32).view(np.uint32).tolist()
    specials += edge_bits + [b | 0x80000000 for b in edge_bits]
    return np.array(vals + specials, dtype=np.uint32)


def bf16_rne(bits):
    """fp32 bits -> bf16 bits, round to nearest even; NaN becomes a quiet NaN with the sign kept."""
    bits = bits.astype(np.uint64)
    is_nan = (bits & 0x7FFFFFFF) > 0x7F800000
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    nan = (bits >> 16) | 0x40
    return np.where(is_nan, nan, rounded).astype(np.uint16)


def gen_conversions(rng, out_dir):
    # fp16 -> f32 (numpy's float16 widening).
    h = half_inputs(rng)
    write_golden(os.path.join(out_dir, "dequant_f16.bin"), KIND_DEQUANTIZE, T.F16, h.size, h.tobytes(),
                 h.view(np.float16).astype(np.float32).tobytes())
    # bf16 -> f32 (gguf-py).
    b = rng.integers(0, 1 << 16, size=512, dtype=np.uint64).astype(np.uint16)
    b[:6] = [0x0000, 0x8000, 0x7F80, 0xFF80, 0x7FC0, 0x0001]
    expected = quants.dequantize(b.view(np.uint8), T.BF16).astype(np.float32)
    write_golden(os.path.join(out_dir, "dequant_bf16.bin"), KIND_DEQUANTIZE, T.BF16, b.size, b.tobytes(),
                 expected.tobytes())
    # f32 -> fp16 (numpy's float16 narrowing: round to nearest even, overflow to inf).
    x = f32_inputs_for_narrowing(rng, 10)
    with np.errstate(over="ignore", invalid="ignore"):
        h = x.view(np.float32).astype(np.float16)
    write_golden(os.path.join(out_dir, "quant_f16.bin"), KIND_QUANTIZE, T.F16, x.size, x.tobytes(), h.tobytes())
    # f32 -> bf16 (bit arithmetic here, cross-checked against gguf-py's quantizer).
    x = f32_inputs_for_narrowing(rng, 7)
    bf = bf16_rne(x)
    ref = quants.quantize(x.view(np.float32), T.BF16).view(np.uint16)
    assert np.array_equal(bf, ref), "bf16 rounding disagrees with gguf-py"
    write_golden(os.path.join(out_dir, "quant_bf16.bin"), KIND_QUANTIZE, T.BF16, x.size, x.tobytes(), bf.tobytes())


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(here, "..", "tests", "golden", "kernels"))
    ap.add_argument("--seed", type=int, default=1234)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    rng = np.random.default_rng(args.seed)
    for qtype in SCALE_OFFSETS:
        gen_dequant(rng, args.out, qtype)
    gen_conversions(rng, args.out)
    total = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    print(f"wrote {len(os.listdir(args.out))} files, {total} bytes, to {os.path.normpath(args.out)}")


if __name__ == "__main__":
    main()
