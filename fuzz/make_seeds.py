#!/usr/bin/env python3
"""Writes the small seed inputs in seeds/gguf and seeds/safetensors for the fuzz targets."""
import json
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def gguf_string(s):
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


SCALAR = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}


def gguf_value(t, v):
    if t == 8:
        return gguf_string(v)
    if t == 9:
        et, items = v
        return struct.pack("<IQ", et, len(items)) + b"".join(gguf_value(et, x) for x in items)
    return struct.pack(SCALAR[t], v)


def gguf(kvs, tensors, alignment=32):
    """kvs: [(key, type, value)]; tensors: [(name, ne innermost first, type id, bytes)]."""
    out = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for k, t, v in kvs:
        out += gguf_string(k) + struct.pack("<I", t) + gguf_value(t, v)
    offset = 0
    for name, ne, tid, data in tensors:
        out += gguf_string(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", n) for n in ne)
        out += struct.pack("<IQ", tid, offset)
        offset += (len(data) + alignment - 1) // alignment * alignment
    if tensors:
        out += b"\0" * (-len(out) % alignment)
    for _, _, _, data in tensors:
        out += data + b"\0" * (-len(data) % alignment)
    return out


def safetensors(entries, metadata=None):
    """entries: [(name, dtype, shape, bytes)]."""
    header, data = {}, b""
    if metadata:
        header["__metadata__"] = metadata
    for name, dtype, shape, raw in entries:
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [len(data), len(data) + len(raw)]}
        data += raw
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * (-len(h) % 8)
    return struct.pack("<Q", len(h)) + h + data


def floats(n, start=0.0):
    return struct.pack("<%df" % n, *[start + 0.25 * i for i in range(n)])


def main():
    g = os.path.join(HERE, "seeds", "gguf")
    s = os.path.join(HERE, "seeds", "safetensors")
    os.makedirs(g, exist_ok=True)
    os.makedirs(s, exist_ok=True)
    q8_block = struct.pack("<e", 0.5) + bytes(range(32))
    files = {
        os.path.join(g, "f32_llama.gguf"): gguf(
            [("general.architecture", 8, "llama"), ("llama.block_count", 4, 1),
             ("llama.attention.layer_norm_rms_epsilon", 6, 1e-5),
             ("tokenizer.ggml.tokens", 9, (8, ["<unk>", "a", "b"])),
             ("tokenizer.ggml.scores", 9, (6, [0.0, -1.0, -2.0]))],
            [("token_embd.weight", [4, 3], 0, floats(12)), ("output_norm.weight", [4], 0, floats(4, 1.0))]),
        os.path.join(g, "q8_0.gguf"): gguf(
            [("general.alignment", 4, 64), ("general.file_type", 4, 7)],
            [("blk.0.ffn_up.weight", [32, 2], 8, q8_block * 2), ("blk.0.ffn_norm.weight", [2], 1, b"\0<\0<")],
            alignment=64),
        os.path.join(g, "all_types.gguf"): gguf(
            [("u8", 0, 1), ("i8", 1, -1), ("u16", 2, 2), ("i16", 3, -2), ("u32", 4, 3), ("i32", 5, -3),
             ("f32", 6, 1.5), ("bool", 7, True), ("str", 8, "x"), ("u64", 10, 4), ("i64", 11, -4),
             ("f64", 12, 2.5), ("nested", 9, (9, [(0, [1, 2]), (8, ["y"])]))],
            []),
    }
    files[os.path.join(s, "f32.safetensors")] = safetensors(
        [("lm_head.weight", "F32", [3, 2], floats(6)), ("model.norm.weight", "F32", [2], floats(2, 1.0))],
        {"format": "pt"})
    files[os.path.join(s, "f16_bf16.safetensors")] = safetensors(
        [("a", "F16", [2, 2], struct.pack("<4e", 1, 2, 3, 4)), ("b", "BF16", [3], b"\x80\x3f\x00\x40\x40\x40"),
         ("empty", "F32", [0, 4], b"")])
    for path, data in files.items():
        with open(path, "wb") as f:
            f.write(data)


if __name__ == "__main__":
    main()
