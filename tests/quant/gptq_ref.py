#!/usr/bin/env python3
"""Independent float64 NumPy reference of GPTQ (Frantar et al., 2022, Algorithm 1), unblocked.

Quantization grid (same convention as src/quant/affine.h):
  symmetric:  scale = max|w| / (2^(b-1) - 1), zero = 0, codes in [-(2^(b-1)-1), 2^(b-1)-1]
  asymmetric: lo = min(min w, 0), hi = max(max w, 0), scale = (hi - lo) / (2^b - 1),
              zero = clip(round(-lo / scale), 0, 2^b - 1), codes in [0, 2^b - 1]
  code = clip(round_half_even(w / scale) + zero), value = scale * (code - zero); scale 0 -> code = zero.
Per-group parameters are taken from the current (error-updated) weights when the loop reaches the group's
first column; with act_order they are fixed beforehand from the original weights ("static groups").

usage: gptq_ref.py IN.bin OUT.bin ROWS COLS BITS SYM(0|1) tensor|channel|group GROUP_SIZE DAMP ACT_ORDER(0|1)
IN.bin:  W [ROWS][COLS] float32, then H [COLS][COLS] float32 (little-endian)
OUT.bin: codes [ROWS][COLS] int32, then dequantized weights [ROWS][COLS] float64
"""
import sys

import numpy as np


def grid(bits, sym):
    if sym:
        m = 2 ** (bits - 1) - 1
        return -m, m
    return 0, 2 ** bits - 1


def params(w, bits, sym):
    """Scale and zero of the values w (any shape)."""
    qmin, qmax = grid(bits, sym)
    if sym:
        return np.max(np.abs(w)) / qmax, 0.0
    lo = min(np.min(w), 0.0)
    hi = max(np.max(w), 0.0)
    scale = (hi - lo) / qmax
    if scale == 0:
        return 0.0, 0.0
    return scale, float(np.clip(np.round(-lo / scale), 0, qmax))


def quant(w, scale, zero, bits, sym):
    """Codes and values of the vector w with per-element scale and zero (arrays)."""
    qmin, qmax = grid(bits, sym)
    safe = np.where(scale > 0, scale, 1.0)
    q = np.clip(np.round(w / safe) + zero, qmin, qmax)
    q = np.where(scale > 0, q, zero)
    return q, scale * (q - zero)


def gptq(W, H, bits, sym, gran, gs, damp, act_order):
    W = W.astype(np.float64).copy()
    H = H.astype(np.float64).copy()
    rows, cols = W.shape
    dead = np.diag(H) == 0
    H[dead, dead] = 1
    W[:, dead] = 0

    # Parameters fixed before the loop: [rows][cols] arrays of each element's scale and zero.
    scale = np.zeros((rows, cols))
    zero = np.zeros((rows, cols))
    dynamic = gran == "group" and not act_order
    if gran == "tensor":
        s, z = params(W, bits, sym)
        scale[:], zero[:] = s, z
    elif gran == "channel":
        for r in range(rows):
            scale[r], zero[r] = params(W[r], bits, sym)
    elif not dynamic:
        for r in range(rows):
            for c0 in range(0, cols, gs):
                scale[r, c0:c0 + gs], zero[r, c0:c0 + gs] = params(W[r, c0:c0 + gs], bits, sym)

    perm = np.arange(cols)
    if act_order:
        perm = np.argsort(-np.diag(H), kind="stable")
    W = W[:, perm]
    H = H[perm][:, perm]
    scale = scale[:, perm]
    zero = zero[:, perm]

    H += damp * np.mean(np.diag(H)) * np.eye(cols)
    Hinv = np.linalg.inv(H)
    U = np.linalg.cholesky(Hinv).T  # upper: Hinv = U^T U

    Q = np.zeros((rows, cols))
    D = np.zeros((rows, cols))
    for j in range(cols):
        if dynamic and j % gs == 0:
            for r in range(rows):
                scale[r, j:j + gs], zero[r, j:j + gs] = params(W[r, j:j + gs], bits, sym)
        q, dq = quant(W[:, j], scale[:, j], zero[:, j], bits, sym)
        Q[:, j] = q
        D[:, j] = dq
        err = (W[:, j] - dq) / U[j, j]
        W[:, j + 1:] -= np.outer(err, U[j, j + 1:])

    inv = np.argsort(perm)
    return Q[:, inv], D[:, inv]


def main():
    (inp, out, rows, cols, bits, sym, gran, gs, damp, act_order) = sys.argv[1:11]
    rows, cols, bits, gs = int(rows), int(cols), int(bits), int(gs)
    data = np.fromfile(inp, dtype="<f4")
    W = data[:rows * cols].reshape(rows, cols)
    H = data[rows * cols:].reshape(cols, cols)
    Q, D = gptq(W, H, bits, sym == "1", gran, gs, float(damp), act_order == "1")
    with open(out, "wb") as f:
        f.write(Q.astype("<i4").tobytes())
        f.write(D.astype("<f8").tobytes())


if __name__ == "__main__":
    main()
