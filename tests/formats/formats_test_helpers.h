// Helpers shared by the formats tests: byte patching and small synthetic model files.
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "test_util.h"

namespace llmopt::test {

template <class T>
void patch(std::string& bytes, size_t offset, T value) {
  std::memcpy(bytes.data() + offset, &value, sizeof(T));
}

template <class T>
T peek(const std::string& bytes, size_t offset) {
  T v;
  std::memcpy(&v, bytes.data() + offset, sizeof(T));
  return v;
}

// Offset of the first byte after the GGUF string (u64 length + bytes) holding `s`.
inline size_t after_gguf_string(const std::string& bytes, const std::string& s) {
  std::string enc(8, '\0');
  const uint64_t n = s.size();
  std::memcpy(enc.data(), &n, 8);
  enc += s;
  const size_t at = bytes.find(enc);
  return at == std::string::npos ? std::string::npos : at + enc.size();
}

// Deterministic pseudo-random bytes.
inline std::vector<uint8_t> pattern_bytes(size_t n, uint32_t seed) {
  std::vector<uint8_t> out(n);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& b : out) {
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    b = static_cast<uint8_t>(x);
  }
  return out;
}

// A small valid GGUF written by GgufWriter: metadata general.architecture, general.alignment
// (u32 32), tokenizer.ggml.tokens (3 strings) and two tensors:
// "tok_embd" f32 [4, 8] and "blk.0.w" q8_0 [2, 32].
struct SmallGguf {
  std::vector<uint8_t> f32_bytes = pattern_bytes(4 * 8 * 4, 1);
  std::vector<uint8_t> q8_bytes = pattern_bytes(2 * 34, 2);
  std::string path;
  std::string bytes;
};

inline SmallGguf write_small_gguf(const std::string& dir) {
  SmallGguf g;
  GgufWriter w;
  w.metadata().set("general.architecture", MetaValue::from_string("llama"));
  w.metadata().set("general.alignment", MetaValue::from_u32(32));
  w.metadata().set("tokenizer.ggml.tokens", MetaValue::from_strings({"a", "bc", "def"}));
  TensorView a;
  a.type = DType::kF32;
  a.shape = {4, 8};
  a.data = g.f32_bytes.data();
  a.nbytes = g.f32_bytes.size();
  w.add_tensor("tok_embd", a);
  TensorView b;
  b.type = DType::kQ8_0;
  b.shape = {2, 32};
  b.data = g.q8_bytes.data();
  b.nbytes = g.q8_bytes.size();
  w.add_tensor("blk.0.w", b);
  g.path = dir + "/small.gguf";
  Status st = w.write(g.path);
  if (!st.ok()) ADD_FAILURE() << st.message();
  g.bytes = read_file(g.path);
  return g;
}

}  // namespace llmopt::test
