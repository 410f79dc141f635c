// The regrouped Q8_0 / Q4_0 / Q4_1 layouts (repack.h): plain scalar code, run once per tensor at load or write.
#include "kernels/repack.h"

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

#include "core/check.h"
#include "kernels/dispatch.h"
#include "kernels/kernels.h"
#include "kernels/ref/blocks.h"

namespace llmopt::kernels {
namespace {

// f16 values at the head of a block (d; Q4_1: d, m) and payload bytes after them.
int64_t halves_of(DType plain) { return plain == DType::kQ4_1 ? 2 : 1; }
int64_t payload_of(DType plain) { return plain == DType::kQ8_0 ? kQK8_0 : kQK4_0 / 2; }

struct Geometry {
  int64_t nb, h, p;
  size_t block_bytes() const { return static_cast<size_t>(2 * h + p); }
  size_t group_bytes() const { return static_cast<size_t>(kR16Rows * nb) * block_bytes(); }
  // f16 number v (0: d, 1: m) of block b of row j
  size_t half_at(int64_t v, int64_t b, int64_t j) const { return static_cast<size_t>(nb * 32 * v + 2 * (kR16Rows * b + j)); }
  size_t byte_at(int64_t b, int64_t j, int64_t i) const {
    return static_cast<size_t>(nb * 32 * h + kR16Rows * p * b + 64 * (i / 4) + 4 * j + i % 4);
  }
  // A plain block's bytes into the group, and back.
  // (payload bytes move 4 at a time: bytes 4q .. 4q + 3 of a row stay together.)
  void to_group(uint8_t* group, const uint8_t* blk, int64_t b, int64_t j) const {
    for (int64_t v = 0; v < h; ++v) std::memcpy(group + half_at(v, b, j), blk + 2 * v, 2);
    for (int64_t i = 0; i < p; i += 4) std::memcpy(group + byte_at(b, j, i), blk + 2 * h + i, 4);
  }
  void to_block(const uint8_t* group, uint8_t* blk, int64_t b, int64_t j) const {
    for (int64_t v = 0; v < h; ++v) std::memcpy(blk + 2 * v, group + half_at(v, b, j), 2);
    for (int64_t i = 0; i < p; i += 4) std::memcpy(blk + 2 * h + i, group + byte_at(b, j, i), 4);
  }
};

Geometry geometry(DType plain, int64_t k) {
  LLMOPT_CHECK((plain == DType::kQ8_0 || plain == DType::kQ4_0 || plain == DType::kQ4_1) && k % 32 == 0);
  return {k / 32, halves_of(plain), payload_of(plain)};
}

}  // namespace

DType r16_type_of(DType t) {
  if (t == DType::kQ8_0) return DType::kQ8_0R16;
  if (t == DType::kQ4_0) return DType::kQ4_0R16;
  if (t == DType::kQ4_1) return DType::kQ4_1R16;
  return t;
}

DType plain_type_of(DType t) {
  if (t == DType::kQ8_0R16) return DType::kQ8_0;
  if (t == DType::kQ4_0R16) return DType::kQ4_0;
  if (t == DType::kQ4_1R16) return DType::kQ4_1;
  return t;
}

bool can_repack_r16(const TensorView& w) {
  if (!w.present() || r16_type_of(w.type) == w.type || w.shape.size() != 2) return false;
  if (w.rows() <= 0 || w.rows() % kR16Rows != 0 || w.cols() <= 0 || w.cols() % 32 != 0) return false;
  return w.nbytes == static_cast<size_t>(w.rows()) * static_cast<size_t>(w.cols() / 32) *
                        static_cast<size_t>(2 * halves_of(w.type) + payload_of(w.type));
}

bool prefers_r16(DType t) {
  const IsaKernels* isa = active_isa_kernels();
  return isa != nullptr && r16_type_of(t) != t && isa->find_matmul(r16_type_of(t)).rows != nullptr;
}

void repack_r16(DType t, uint8_t* data, int64_t rows, int64_t k) {
  LLMOPT_CHECK(rows % kR16Rows == 0);
  const Geometry g = geometry(t, k);
  const int64_t n_groups = rows / kR16Rows;
  auto groups = [&](int64_t g0, int64_t g1) {
    std::vector<uint8_t> plain(g.group_bytes());
    for (int64_t grp = g0; grp < g1; ++grp) {
      uint8_t* base = data + static_cast<size_t>(grp) * g.group_bytes();
      std::memcpy(plain.data(), base, plain.size());
      for (int64_t j = 0; j < kR16Rows; ++j) {
        for (int64_t b = 0; b < g.nb; ++b) {
          g.to_group(base, plain.data() + static_cast<size_t>(j * g.nb + b) * g.block_bytes(), b, j);
        }
      }
    }
  };
  // Large tensors on a few threads (each group is independent): a 1 GB model's load would otherwise
  // spend seconds here.
  const int64_t n_threads =
      std::clamp<int64_t>(static_cast<int64_t>(std::thread::hardware_concurrency()), 1, 8);
  if (n_threads == 1 || static_cast<size_t>(n_groups) * g.group_bytes() < (size_t{8} << 20)) {
    groups(0, n_groups);
    return;
  }
  std::vector<std::thread> pool;
  for (int64_t i = 0; i < n_threads; ++i) {
    pool.emplace_back(groups, n_groups * i / n_threads, n_groups * (i + 1) / n_threads);
  }
  for (auto& th : pool) th.join();
}

void unpack_r16(DType r, const uint8_t* src, int64_t rows, int64_t k, uint8_t* dst) {
  LLMOPT_CHECK(rows % kR16Rows == 0 && src != dst && is_r16(r));
  const Geometry g = geometry(plain_type_of(r), k);
  for (int64_t grp = 0; grp < rows / kR16Rows; ++grp) {
    const uint8_t* base = src + static_cast<size_t>(grp) * g.group_bytes();
    uint8_t* out = dst + static_cast<size_t>(grp) * g.group_bytes();
    for (int64_t j = 0; j < kR16Rows; ++j) {
      for (int64_t b = 0; b < g.nb; ++b) {
        g.to_block(base, out + static_cast<size_t>(j * g.nb + b) * g.block_bytes(), b, j);
      }
    }
  }
}

void dequantize_r16_row(DType rt, const uint8_t* data, int64_t k, int64_t r, float* dst) {
  LLMOPT_CHECK(r >= 0 && is_r16(rt));
  const DType plain = plain_type_of(rt);
  const Geometry g = geometry(plain, k);
  const uint8_t* base = data + static_cast<size_t>(r / kR16Rows) * g.group_bytes();
  const int64_t j = r % kR16Rows;
  std::vector<uint8_t> row(static_cast<size_t>(g.nb) * g.block_bytes());
  for (int64_t b = 0; b < g.nb; ++b) {
    g.to_block(base, row.data() + static_cast<size_t>(b) * g.block_bytes(), b, j);
  }
  dequantize_row(plain, row.data(), dst, k);
}

}  // namespace llmopt::kernels
