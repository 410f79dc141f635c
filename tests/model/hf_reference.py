#!/usr/bin/env python3
"""Writes a small random Hugging Face model directory and its reference logits.

Independent of the C++ loader: the model is written in HF's own layout (GPT-2 Conv1D weights stored
[in, out] under "transformer.*"; LLaMA q/k rows in rotate-half order, GQA, untied lm_head), the
safetensors file is written by hand, and logits are computed in float64 directly in that layout
(x @ W for Conv1D, x @ W.T for nn.Linear, rotate-half RoPE).

usage: hf_reference.py gpt2 OUT_DIR GPT2_TOKENIZER_DIR
       hf_reference.py llama OUT_DIR
Writes OUT_DIR/{config.json, model.safetensors, tokenizer files, reference_ids.json,
reference_logits.f64} (logits: float64 little-endian, [n_tokens, n_vocab]).
"""
import json
import math
import os
import shutil
import struct
import sys

import numpy as np


# ---- safetensors ---------------------------------------------------------------------------------

def to_bf16_bits(a):
    """Rounds float32 values to bfloat16 (nearest even) and returns the uint16 bit patterns."""
    bits = np.asarray(a, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (bits + 0x7FFF + ((bits >> 16) & 1)) >> 16
    return rounded.astype(np.uint16)


def bf16_bits_to_f64(b):
    return (b.astype(np.uint32) << 16).view(np.float32).astype(np.float64)


def write_safetensors(path, tensors):
    """tensors: list of (name, dtype 'F32'|'F16'|'BF16', array). Returns nothing."""
    header = {"__metadata__": {"format": "pt"}}
    blobs = []
    offset = 0
    for name, dtype, arr in tensors:
        if dtype == "F32":
            raw = np.asarray(arr, dtype="<f4").tobytes()
        elif dtype == "F16":
            raw = np.asarray(arr, dtype="<f2").tobytes()
        elif dtype == "BF16":
            raw = to_bf16_bits(arr).astype("<u2").tobytes()
        else:
            raise ValueError(dtype)
        header[name] = {"dtype": dtype, "shape": list(arr.shape), "data_offsets": [offset, offset + len(raw)]}
        blobs.append(raw)
        offset += len(raw)
    hdr = json.dumps(header).encode()
    hdr += b" " * ((8 - len(hdr) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hdr)))
        f.write(hdr)
        for b in blobs:
            f.write(b)


def stored_value(dtype, arr):
    """The float64 value a tensor has after being stored in `dtype`."""
    if dtype == "F32":
        return np.asarray(arr, dtype=np.float32).astype(np.float64)
    if dtype == "F16":
        return np.asarray(arr, dtype=np.float16).astype(np.float64)
    return bf16_bits_to_f64(to_bf16_bits(arr))


# ---- GPT-2 -------------------------------------------------------------------------------------

def layer_norm(x, w, b, eps):
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def gelu_new(x):
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))


def causal_attention(q, k, v):
    """q: [T, H, D], k/v: [T, H, D] -> [T, H, D]."""
    t, h, d = q.shape
    out = np.zeros_like(q)
    for hh in range(h):
        s = q[:, hh, :] @ k[:, hh, :].T / math.sqrt(d)
        s = s + np.triu(np.full((t, t), -np.inf), 1)
        s = np.exp(s - s.max(-1, keepdims=True))
        s /= s.sum(-1, keepdims=True)
        out[:, hh, :] = s @ v[:, hh, :]
    return out


def make_gpt2(out_dir, tok_dir, rng):
    n_embd, n_layer, n_head, n_pos, n_vocab, eps = 32, 2, 4, 64, 50257, 1e-5
    hd = n_embd // n_head
    config = {
        "architectures": ["GPT2LMHeadModel"], "model_type": "gpt2", "activation_function": "gelu_new",
        "n_embd": n_embd, "n_layer": n_layer, "n_head": n_head, "n_positions": n_pos, "n_ctx": n_pos,
        "layer_norm_epsilon": eps, "vocab_size": n_vocab, "bos_token_id": 50256, "eos_token_id": 50256,
    }
    tensors, w = [], {}

    def add(name, dtype, arr):
        tensors.append((name, dtype, arr))
        w[name] = stored_value(dtype, arr)

    p = "transformer."
    add(p + "wte.weight", "F32", rng.normal(0, 0.2, (n_vocab, n_embd)))
    add(p + "wpe.weight", "F32", rng.normal(0, 0.1, (n_pos, n_embd)))
    for il in range(n_layer):
        h = f"{p}h.{il}."
        # LayerNorm parameters stored in f16: the loader must widen them.
        add(h + "ln_1.weight", "F16", 1.0 + rng.normal(0, 0.1, n_embd))
        add(h + "ln_1.bias", "F16", rng.normal(0, 0.1, n_embd))
        add(h + "attn.c_attn.weight", "F32", rng.normal(0, 0.2, (n_embd, 3 * n_embd)))  # Conv1D [in, out]
        add(h + "attn.c_attn.bias", "F32", rng.normal(0, 0.1, 3 * n_embd))
        add(h + "attn.c_proj.weight", "F32", rng.normal(0, 0.2, (n_embd, n_embd)))
        add(h + "attn.c_proj.bias", "F32", rng.normal(0, 0.1, n_embd))
        add(h + "ln_2.weight", "F32", 1.0 + rng.normal(0, 0.1, n_embd))
        add(h + "ln_2.bias", "F32", rng.normal(0, 0.1, n_embd))
        add(h + "mlp.c_fc.weight", "F32", rng.normal(0, 0.2, (n_embd, 4 * n_embd)))
        add(h + "mlp.c_fc.bias", "F32", rng.normal(0, 0.1, 4 * n_embd))
        add(h + "mlp.c_proj.weight", "F32", rng.normal(0, 0.2, (4 * n_embd, n_embd)))
        add(h + "mlp.c_proj.bias", "F32", rng.normal(0, 0.1, n_embd))
        # Buffers some checkpoints carry; they are not weights.
        add(h + "attn.bias", "F32", np.tril(np.ones((n_pos, n_pos))).reshape(1, 1, n_pos, n_pos))
    add(p + "ln_f.weight", "F32", 1.0 + rng.normal(0, 0.1, n_embd))
    add(p + "ln_f.bias", "F32", rng.normal(0, 0.1, n_embd))

    write_safetensors(os.path.join(out_dir, "model.safetensors"), tensors)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    shutil.copy(os.path.join(tok_dir, "vocab.json"), os.path.join(out_dir, "vocab.json"))
    shutil.copy(os.path.join(tok_dir, "merges.txt"), os.path.join(out_dir, "merges.txt"))

    ids = [50256, 464, 2068, 7586, 21831, 18045, 625, 262, 16931, 3290, 13, 198]
    x = w[p + "wte.weight"][ids] + w[p + "wpe.weight"][np.arange(len(ids))]
    for il in range(n_layer):
        h = f"{p}h.{il}."
        a = layer_norm(x, w[h + "ln_1.weight"], w[h + "ln_1.bias"], eps)
        qkv = a @ w[h + "attn.c_attn.weight"] + w[h + "attn.c_attn.bias"]
        q, k, v = (qkv[:, i * n_embd:(i + 1) * n_embd].reshape(-1, n_head, hd) for i in range(3))
        att = causal_attention(q, k, v).reshape(-1, n_embd)
        x = x + att @ w[h + "attn.c_proj.weight"] + w[h + "attn.c_proj.bias"]
        m = layer_norm(x, w[h + "ln_2.weight"], w[h + "ln_2.bias"], eps)
        m = gelu_new(m @ w[h + "mlp.c_fc.weight"] + w[h + "mlp.c_fc.bias"])
        x = x + m @ w[h + "mlp.c_proj.weight"] + w[h + "mlp.c_proj.bias"]
    x = layer_norm(x, w[p + "ln_f.weight"], w[p + "ln_f.bias"], eps)
    return ids, x @ w[p + "wte.weight"].T


# ---- LLaMA -------------------------------------------------------------------------------------

def rms_norm(x, w, eps):
    return x / np.sqrt((x * x).mean(-1, keepdims=True) + eps) * w


def rope_rotate_half(x, theta):
    """x: [T, H, D] in HF's layout: dims i and i + D/2 form a rotary pair."""
    t, _, d = x.shape
    inv_freq = 1.0 / (theta ** (np.arange(0, d, 2, dtype=np.float64) / d))
    freqs = np.outer(np.arange(t, dtype=np.float64), inv_freq)
    emb = np.concatenate([freqs, freqs], -1)
    cos, sin = np.cos(emb)[:, None, :], np.sin(emb)[:, None, :]
    rot = np.concatenate([-x[..., d // 2:], x[..., :d // 2]], -1)
    return x * cos + rot * sin


def llama_tokenizer(out_dir):
    vocab = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    vocab += ["\u2581"] + [chr(c) for c in range(ord("a"), ord("z") + 1)]
    merges = [("\u2581", "t"), ("h", "e"), ("\u2581t", "he"), ("\u2581", "a"), ("n", "d"), ("\u2581a", "nd")]
    vocab += [a + b for a, b in merges]
    added = [{"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False,
              "normalized": False, "special": True} for i, t in enumerate(vocab[:3])]
    tok = {
        "version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
        "normalizer": {"type": "Sequence", "normalizers": [
            {"type": "Prepend", "prepend": "\u2581"},
            {"type": "Replace", "pattern": {"String": " "}, "content": "\u2581"}]},
        "pre_tokenizer": None,
        "post_processor": None,
        "decoder": {"type": "Sequence", "decoders": [
            {"type": "Replace", "pattern": {"String": "\u2581"}, "content": " "},
            {"type": "ByteFallback"}, {"type": "Fuse"},
            {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
        "model": {"type": "BPE", "dropout": None, "unk_token": "<unk>", "continuing_subword_prefix": None,
                  "end_of_word_suffix": None, "fuse_unk": True, "byte_fallback": True, "ignore_merges": False,
                  "vocab": {t: i for i, t in enumerate(vocab)}, "merges": [f"{a} {b}" for a, b in merges]},
    }
    with open(os.path.join(out_dir, "tokenizer.json"), "w", encoding="utf-8") as f:
        json.dump(tok, f, ensure_ascii=False, indent=1)
    with open(os.path.join(out_dir, "tokenizer_config.json"), "w") as f:
        json.dump({"add_bos_token": True, "add_eos_token": False, "bos_token": "<s>", "eos_token": "</s>",
                   "unk_token": "<unk>", "tokenizer_class": "LlamaTokenizer"}, f, indent=2)
    return len(vocab)


def make_llama(out_dir, rng):
    n_vocab = llama_tokenizer(out_dir)
    dim, n_layer, n_head, n_kv, ff, eps, theta, n_pos = 64, 2, 8, 2, 96, 1e-5, 5000.0, 128
    hd = dim // n_head
    config = {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_act": "silu",
        "hidden_size": dim, "intermediate_size": ff, "num_hidden_layers": n_layer,
        "num_attention_heads": n_head, "num_key_value_heads": n_kv, "rms_norm_eps": eps,
        "rope_theta": theta, "max_position_embeddings": n_pos, "tie_word_embeddings": False,
        "vocab_size": n_vocab, "bos_token_id": 1, "eos_token_id": 2, "rope_scaling": None,
        "attention_bias": False, "torch_dtype": "float32",
    }
    tensors, w = [], {}

    def add(name, dtype, arr):
        tensors.append((name, dtype, arr))
        w[name] = stored_value(dtype, arr)

    add("model.embed_tokens.weight", "F32", rng.normal(0, 0.5, (n_vocab, dim)))
    for il in range(n_layer):
        h = f"model.layers.{il}."
        add(h + "input_layernorm.weight", "BF16", 1.0 + rng.normal(0, 0.1, dim))
        add(h + "self_attn.q_proj.weight", "F32", rng.normal(0, 0.3, (n_head * hd, dim)))
        add(h + "self_attn.k_proj.weight", "F32", rng.normal(0, 0.3, (n_kv * hd, dim)))
        add(h + "self_attn.v_proj.weight", "F32", rng.normal(0, 0.2, (n_kv * hd, dim)))
        add(h + "self_attn.o_proj.weight", "F32", rng.normal(0, 0.2, (dim, n_head * hd)))
        add(h + "post_attention_layernorm.weight", "F32", 1.0 + rng.normal(0, 0.1, dim))
        add(h + "mlp.gate_proj.weight", "F32", rng.normal(0, 0.2, (ff, dim)))
        # One matrix kept in bf16: the loader leaves 2-D bf16 weights in their type.
        add(h + "mlp.up_proj.weight", "BF16", rng.normal(0, 0.2, (ff, dim)))
        add(h + "mlp.down_proj.weight", "F32", rng.normal(0, 0.2, (dim, ff)))
    add("model.norm.weight", "F32", 1.0 + rng.normal(0, 0.1, dim))
    add("lm_head.weight", "F32", rng.normal(0, 0.3, (n_vocab, dim)))

    write_safetensors(os.path.join(out_dir, "model.safetensors"), tensors)
    with open(os.path.join(out_dir, "config.json"), "w") as f:
        json.dump(config, f, indent=2)

    ids = [1, 260, 287, 100, 291, 5, 270, 3, 289, 290, 42, 261, 2, 280]
    x = w["model.embed_tokens.weight"][ids]
    group = n_head // n_kv
    for il in range(n_layer):
        h = f"model.layers.{il}."
        a = rms_norm(x, w[h + "input_layernorm.weight"], eps)
        q = (a @ w[h + "self_attn.q_proj.weight"].T).reshape(-1, n_head, hd)
        k = (a @ w[h + "self_attn.k_proj.weight"].T).reshape(-1, n_kv, hd)
        v = (a @ w[h + "self_attn.v_proj.weight"].T).reshape(-1, n_kv, hd)
        q, k = rope_rotate_half(q, theta), rope_rotate_half(k, theta)
        k, v = np.repeat(k, group, axis=1), np.repeat(v, group, axis=1)
        att = causal_attention(q, k, v).reshape(-1, n_head * hd)
        x = x + att @ w[h + "self_attn.o_proj.weight"].T
        m = rms_norm(x, w[h + "post_attention_layernorm.weight"], eps)
        g = m @ w[h + "mlp.gate_proj.weight"].T
        u = m @ w[h + "mlp.up_proj.weight"].T
        x = x + (g / (1.0 + np.exp(-g)) * u) @ w[h + "mlp.down_proj.weight"].T
    x = rms_norm(x, w["model.norm.weight"], eps)
    return ids, x @ w["lm_head.weight"].T


def main():
    kind, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    rng = np.random.default_rng(20240607)
    if kind == "gpt2":
        ids, logits = make_gpt2(out_dir, sys.argv[3], rng)
    elif kind == "llama":
        ids, logits = make_llama(out_dir, rng)
    else:
        raise SystemExit(f"unknown kind {kind}")
    with open(os.path.join(out_dir, "reference_ids.json"), "w") as f:
        json.dump(ids, f)
    np.asarray(logits, dtype="<f8").tofile(os.path.join(out_dir, "reference_logits.f64"))


if __name__ == "__main__":
    main()
