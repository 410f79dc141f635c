#!/usr/bin/env python3
"""Independent float64 NumPy reference of the GPT-2 and LLaMA forward passes.

Reads a GGUF file (F32/F16 tensors, llama.cpp names and metadata keys) with its own minimal parser,
runs the whole token sequence at once (no cache) and writes the logits of every position as raw
little-endian float32, [n_tokens, n_vocab], to the output file.

usage: numpy_ref.py MODEL.gguf OUT.bin TOKEN_ID[,TOKEN_ID...]
"""
import struct
import sys

import numpy as np

# ---- GGUF ------------------------------------------------------------------------------------

_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
_STRING, _ARRAY = 8, 9


class _Reader:
    def __init__(self, data):
        self.data = data
        self.off = 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.data, self.off)[0]
        self.off += struct.calcsize(fmt)
        return v

    def string(self):
        n = self.take("<Q")
        s = self.data[self.off:self.off + n].decode("utf-8")
        self.off += n
        return s

    def value(self, vtype):
        if vtype == _STRING:
            return self.string()
        if vtype == _ARRAY:
            etype = self.take("<I")
            return [self.value(etype) for _ in range(self.take("<Q"))]
        return self.take(_SCALARS[vtype])


def read_gguf(path):
    """Returns (metadata dict, {name: np.ndarray float64 with shape outermost first})."""
    with open(path, "rb") as f:
        data = f.read()
    r = _Reader(data)
    if data[:4] != b"GGUF":
        raise ValueError("not a GGUF file")
    r.off = 4
    version = r.take("<I")
    if version not in (2, 3):
        raise ValueError("unsupported GGUF version %d" % version)
    n_tensors = r.take("<Q")
    n_kv = r.take("<Q")
    meta = {}
    for _ in range(n_kv):
        key = r.string()
        meta[key] = r.value(r.take("<I"))
    infos = []
    for _ in range(n_tensors):
        name = r.string()
        n_dims = r.take("<I")
        dims = [r.take("<Q") for _ in range(n_dims)]  # innermost first
        ttype = r.take("<I")
        offset = r.take("<Q")
        infos.append((name, dims, ttype, offset))
    align = int(meta.get("general.alignment", 32))
    base = (r.off + align - 1) // align * align
    tensors = {}
    for name, dims, ttype, offset in infos:
        count = int(np.prod(dims)) if dims else 1
        if ttype == 0:
            arr = np.frombuffer(data, dtype="<f4", count=count, offset=base + offset)
        elif ttype == 1:
            arr = np.frombuffer(data, dtype="<f2", count=count, offset=base + offset)
        else:
            raise ValueError("tensor %s: type %d not supported by the reference" % (name, ttype))
        tensors[name] = arr.astype(np.float64).reshape(list(reversed(dims)))
    return meta, tensors


# ---- math ------------------------------------------------------------------------------------

def layer_norm(x, w, b, eps):
    mu = x.mean(axis=-1, keepdims=True)
    var = ((x - mu) ** 2).mean(axis=-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def rms_norm(x, w, eps):
    return x / np.sqrt((x * x).mean(axis=-1, keepdims=True) + eps) * w


def gelu_tanh(x):
    return 0.5 * x * (1.0 + np.tanh(np.sqrt(2.0 / np.pi) * (x + 0.044715 * x ** 3)))


def silu(x):
    return x / (1.0 + np.exp(-x))


def rope_adjacent(x, n_rot, base):
    """x: [n, heads, head_dim]; rotates pairs (2i, 2i+1), i < n_rot/2, by pos * base^(-2i/n_rot)."""
    n = x.shape[0]
    out = x.copy()
    i = np.arange(n_rot // 2, dtype=np.float64)
    theta = np.arange(n, dtype=np.float64)[:, None] * base ** (-2.0 * i / n_rot)[None, :]  # [n, n_rot/2]
    cos, sin = np.cos(theta)[:, None, :], np.sin(theta)[:, None, :]
    x0, x1 = x[:, :, 0:n_rot:2], x[:, :, 1:n_rot:2]
    out[:, :, 0:n_rot:2] = x0 * cos - x1 * sin
    out[:, :, 1:n_rot:2] = x0 * sin + x1 * cos
    return out


def causal_attention(q, k, v):
    """q: [n, n_head, hd], k/v: [n, n_head_kv, hd] -> [n, n_head * hd]."""
    n, n_head, hd = q.shape
    group = n_head // k.shape[1]
    out = np.zeros((n, n_head, hd))
    mask = np.triu(np.full((n, n), -np.inf), k=1)
    for h in range(n_head):
        kh, vh = k[:, h // group, :], v[:, h // group, :]
        s = q[:, h, :] @ kh.T / np.sqrt(hd) + mask
        s = np.exp(s - s.max(axis=-1, keepdims=True))
        s /= s.sum(axis=-1, keepdims=True)
        out[:, h, :] = s @ vh
    return out.reshape(n, n_head * hd)


# ---- architectures ---------------------------------------------------------------------------

def gpt2(meta, t, ids):
    n_layer = int(meta["gpt2.block_count"])
    n_head = int(meta["gpt2.attention.head_count"])
    n_head_kv = int(meta.get("gpt2.attention.head_count_kv", n_head))
    eps = float(meta["gpt2.attention.layer_norm_epsilon"])
    n = len(ids)
    x = t["token_embd.weight"][ids] + t["position_embd.weight"][:n]
    n_embd = x.shape[1]
    hd = n_embd // n_head
    for il in range(n_layer):
        p = "blk.%d." % il
        h = layer_norm(x, t[p + "attn_norm.weight"], t[p + "attn_norm.bias"], eps)
        qkv = h @ t[p + "attn_qkv.weight"].T + t[p + "attn_qkv.bias"]
        q = qkv[:, :n_head * hd].reshape(n, n_head, hd)
        k = qkv[:, n_head * hd:(n_head + n_head_kv) * hd].reshape(n, n_head_kv, hd)
        v = qkv[:, (n_head + n_head_kv) * hd:].reshape(n, n_head_kv, hd)
        a = causal_attention(q, k, v)
        x = x + a @ t[p + "attn_output.weight"].T + t[p + "attn_output.bias"]
        h = layer_norm(x, t[p + "ffn_norm.weight"], t[p + "ffn_norm.bias"], eps)
        f = gelu_tanh(h @ t[p + "ffn_up.weight"].T + t[p + "ffn_up.bias"])
        x = x + f @ t[p + "ffn_down.weight"].T + t[p + "ffn_down.bias"]
    x = layer_norm(x, t["output_norm.weight"], t["output_norm.bias"], eps)
    head = t.get("output.weight", t["token_embd.weight"])
    return x @ head.T


def llama(meta, t, ids):
    n_layer = int(meta["llama.block_count"])
    n_head = int(meta["llama.attention.head_count"])
    n_head_kv = int(meta.get("llama.attention.head_count_kv", n_head))
    eps = float(meta["llama.attention.layer_norm_rms_epsilon"])
    base = float(meta.get("llama.rope.freq_base", 10000.0))
    n = len(ids)
    x = t["token_embd.weight"][ids]
    n_embd = x.shape[1]
    hd = n_embd // n_head
    n_rot = int(meta.get("llama.rope.dimension_count", hd))
    for il in range(n_layer):
        p = "blk.%d." % il
        h = rms_norm(x, t[p + "attn_norm.weight"], eps)
        q = (h @ t[p + "attn_q.weight"].T).reshape(n, n_head, hd)
        k = (h @ t[p + "attn_k.weight"].T).reshape(n, n_head_kv, hd)
        v = (h @ t[p + "attn_v.weight"].T).reshape(n, n_head_kv, hd)
        a = causal_attention(rope_adjacent(q, n_rot, base), rope_adjacent(k, n_rot, base), v)
        x = x + a @ t[p + "attn_output.weight"].T
        h = rms_norm(x, t[p + "ffn_norm.weight"], eps)
        f = silu(h @ t[p + "ffn_gate.weight"].T) * (h @ t[p + "ffn_up.weight"].T)
        x = x + f @ t[p + "ffn_down.weight"].T
    x = rms_norm(x, t["output_norm.weight"], eps)
    head = t.get("output.weight", t["token_embd.weight"])
    return x @ head.T


def main(argv):
    if len(argv) != 4:
        sys.stderr.write(__doc__)
        return 2
    meta, tensors = read_gguf(argv[1])
    ids = [int(s) for s in argv[3].split(",")]
    arch = meta["general.architecture"]
    if arch == "gpt2":
        logits = gpt2(meta, tensors, ids)
    elif arch == "llama":
        logits = llama(meta, tensors, ids)
    else:
        sys.stderr.write("unknown architecture %r\n" % arch)
        return 1
    logits.astype("<f4").tofile(argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
