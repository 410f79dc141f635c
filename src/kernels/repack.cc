// The regrouped Q8_0 / Q4_0 / Q4_1 / Q4_K / Q5_K / Q6_K / F32 / F16 layouts (repack.h): plain scalar code, run once per tensor at load or write.
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

// A file block (Q8_0 / Q4_0 / Q4_1: 32 elements; Q4_K / Q5_K / Q6_K: 256) is a few fields, each n chunks of w bytes
// (2: an f16 value; 4: 4 payload bytes) at byte src of the block. In a group, chunk c of a field of
// row j of block b lies at start + stride * b + 16 w c + w j: each chunk of the 16 rows side by side
// (repack.h).
struct Field {
  int64_t src, w, n, start, stride;
};

struct Geometry {
  int64_t nb = 0, block_bytes = 0, n_fields = 0;
  Field f[5] = {};
  size_t group_bytes() const { return static_cast<size_t>(kR16Rows * nb * block_bytes); }
  size_t at(const Field& x, int64_t b, int64_t j, int64_t c) const {
    return static_cast<size_t>(x.start + x.stride * b + 16 * x.w * c + x.w * j);
  }
  // A plain block's bytes into the group, and back.
  void to_group(uint8_t* group, const uint8_t* blk, int64_t b, int64_t j) const {
    for (int64_t i = 0; i < n_fields; ++i) {
      for (int64_t c = 0; c < f[i].n; ++c) std::memcpy(group + at(f[i], b, j, c), blk + f[i].src + f[i].w * c, f[i].w);
    }
  }
  void to_block(const uint8_t* group, uint8_t* blk, int64_t b, int64_t j) const {
    for (int64_t i = 0; i < n_fields; ++i) {
      for (int64_t c = 0; c < f[i].n; ++c) std::memcpy(blk + f[i].src + f[i].w * c, group + at(f[i], b, j, c), f[i].w);
    }
  }
};

bool has_r16(DType plain) {
  return plain == DType::kQ8_0 || plain == DType::kQ4_0 || plain == DType::kQ4_1 || plain == DType::kQ4_K ||
         plain == DType::kQ5_K || plain == DType::kQ6_K || plain == DType::kF32 || plain == DType::kF16;
}

// The fields of each type (repack.h has the resulting offsets).
Geometry geometry(DType plain, int64_t k) {
  LLMOPT_CHECK(has_r16(plain) && k % dtype_info(plain).block_size == 0);
  const int64_t nb = k / dtype_info(plain).block_size;
  switch (plain) {
    case DType::kQ8_0:
      return {nb, 34, 2, {{0, 2, 1, 0, 32}, {2, 4, 8, nb * 32, 512}}};
    case DType::kQ4_0:
      return {nb, 18, 2, {{0, 2, 1, 0, 32}, {2, 4, 4, nb * 32, 256}}};
    case DType::kQ4_1:
      return {nb, 20, 3, {{0, 2, 1, 0, 32}, {2, 2, 1, nb * 32, 32}, {4, 4, 4, nb * 64, 256}}};
    case DType::kQ4_K:  // d, dmin, the 12 scale bytes, the 128 nibble bytes; each super-block's together
      return {nb, 144, 4, {{0, 2, 1, 0, 2304}, {2, 2, 1, 32, 2304}, {4, 4, 3, 64, 2304}, {16, 4, 32, 256, 2304}}};
    case DType::kQ5_K:  // as Q4_K, with the 32 qh bytes before the nibbles
      return {nb, 176, 5,
              {{0, 2, 1, 0, 2816}, {2, 2, 1, 32, 2816}, {4, 4, 3, 64, 2816}, {16, 4, 8, 256, 2816}, {48, 4, 32, 768, 2816}}};
    case DType::kF32:  // one element per "block": element k of row j at 64 k + 4 j
      return {nb, 4, 1, {{0, 4, 1, 0, 64}}};
    case DType::kF16:  // at 32 k + 2 j
      return {nb, 2, 1, {{0, 2, 1, 0, 32}}};
    default:  // Q6_K: the 16 scales, ql, qh, d; each super-block's together
      return {nb, 210, 4, {{192, 4, 4, 0, 3360}, {0, 4, 32, 256, 3360}, {128, 4, 16, 2304, 3360}, {208, 2, 1, 3328, 3360}}};
  }
}

// dst[16 c + j] = src[j * n + c] for the 16 rows j of n elements (the float layouts).
template <class T>
void transpose16(const T* src, T* dst, int64_t n) {
  for (int64_t c = 0; c < n; ++c) {
    for (int64_t j = 0; j < kR16Rows; ++j) dst[kR16Rows * c + j] = src[j * n + c];
  }
}

constexpr int64_t kQ6Super = kR16Rows * 210;  // one super-block of a 16-row Q6_K group

// One 16-row Q6_K super-block from kQ6_KR16 to kQ6_KR16X3 (repack.h): the scales k-major (byte 16 k + j:
// scale k of row j) and the codes (bytes 256 .. 3327) from ql / qh to three planes. Byte n of a
// 64-byte chunk is row n / 4, element n % 4 of its 4.
void q6k_to_planes(uint8_t* sp) {
  uint8_t sc[256];
  for (int k = 0; k < 16; ++k) {
    for (int j = 0; j < 16; ++j) sc[16 * k + j] = sp[64 * (k / 4) + 4 * j + k % 4];
  }
  std::memcpy(sp, sc, sizeof sc);
  uint8_t out[3072];
  for (int h = 0; h < 2; ++h) {
    for (int q = 0; q < 8; ++q) {
      const uint8_t* lo = sp + 256 + 64 * (16 * h + q);
      const uint8_t* hi = sp + 256 + 64 * (16 * h + 8 + q);
      const uint8_t* qh = sp + 2304 + 64 * (8 * h + q);
      uint8_t* pl = out + 64 * (24 * h + 3 * q);
      for (int n = 0; n < 64; ++n) {
        const int u[4] = {(lo[n] & 15) | (qh[n] & 3) << 4, (hi[n] & 15) | (qh[n] >> 2 & 3) << 4,
                          (lo[n] >> 4) | (qh[n] >> 4 & 3) << 4, (hi[n] >> 4) | (qh[n] >> 6 & 3) << 4};
        for (int p = 0; p < 3; ++p) pl[64 * p + n] = static_cast<uint8_t>(u[p] | (u[3] >> (2 * p) & 3) << 6);
      }
    }
  }
  std::memcpy(sp + 256, out, sizeof out);
}

// ql, qh and the scales of row j's file super-block (blk: 210 bytes) from its kQ6_KR16X3 group
// super-block sp (d is where kQ6_KR16 has it).
void q6k_planes_row(const uint8_t* sp, int64_t j, uint8_t* blk) {
  for (int k = 0; k < 16; ++k) blk[192 + k] = sp[16 * k + j];
  for (int h = 0; h < 2; ++h) {
    for (int q = 0; q < 8; ++q) {
      const uint8_t* pl = sp + 256 + 64 * (24 * h + 3 * q) + 4 * j;
      for (int e = 0; e < 4; ++e) {
        const int u[4] = {pl[e] & 63, pl[64 + e] & 63, pl[128 + e] & 63,
                          pl[e] >> 6 | (pl[64 + e] >> 6) << 2 | (pl[128 + e] >> 6) << 4};
        const int l = 4 * q + e;
        blk[64 * h + l] = static_cast<uint8_t>((u[0] & 15) | (u[2] & 15) << 4);
        blk[64 * h + 32 + l] = static_cast<uint8_t>((u[1] & 15) | (u[3] & 15) << 4);
        blk[128 + 32 * h + l] = static_cast<uint8_t>(u[0] >> 4 | (u[1] >> 4) << 2 | (u[2] >> 4) << 4 | (u[3] >> 4) << 6);
      }
    }
  }
}

// The whole groups of a Q6_K tensor (rows, k) at data: each super-block through f.
void for_each_q6k_super(uint8_t* data, int64_t rows, int64_t k, void (*f)(uint8_t*)) {
  const int64_t n = rows / kR16Rows * (k / 256);
  for (int64_t i = 0; i < n; ++i) f(data + static_cast<size_t>(i * kQ6Super));
}

}  // namespace

DType r16_type_of(DType t) {
  if (t == DType::kQ8_0) return DType::kQ8_0R16;
  if (t == DType::kQ4_0) return DType::kQ4_0R16;
  if (t == DType::kQ4_1) return DType::kQ4_1R16;
  if (t == DType::kQ4_K) return DType::kQ4_KR16;
  if (t == DType::kQ5_K) return DType::kQ5_KR16;
  if (t == DType::kQ6_K) return DType::kQ6_KR16;
  if (t == DType::kF32) return DType::kF32R16;
  if (t == DType::kF16) return DType::kF16R16;
  return t;
}

DType plain_type_of(DType t) {
  if (t == DType::kQ8_0R16) return DType::kQ8_0;
  if (t == DType::kQ4_0R16) return DType::kQ4_0;
  if (t == DType::kQ4_1R16) return DType::kQ4_1;
  if (t == DType::kQ4_KR16) return DType::kQ4_K;
  if (t == DType::kQ5_KR16) return DType::kQ5_K;
  if (t == DType::kQ6_KR16 || t == DType::kQ6_KR16X3) return DType::kQ6_K;
  if (t == DType::kF32R16) return DType::kF32;
  if (t == DType::kF16R16) return DType::kF16;
  return t;
}

bool can_repack_r16(const TensorView& w) {
  if (!w.present() || r16_type_of(w.type) == w.type || w.shape.size() != 2) return false;
  const int64_t be = dtype_info(w.type).block_size;
  if (w.rows() < kR16Rows || w.cols() <= 0 || w.cols() % be != 0) return false;
  return w.nbytes == static_cast<size_t>(w.rows()) * static_cast<size_t>(w.cols() / be) * dtype_info(w.type).type_size;
}

DType preferred_r16_type(DType t) {
  const IsaKernels* isa = active_isa_kernels();
  if (t == DType::kQ6_K && isa != nullptr && isa->find_matmul(DType::kQ6_KR16X3).rows != nullptr) {
    return DType::kQ6_KR16X3;
  }
  return r16_type_of(t);
}

bool prefers_r16(DType t) {
  const IsaKernels* isa = active_isa_kernels();
  const DType r = preferred_r16_type(t);
  return isa != nullptr && r != t && isa->find_matmul(r).rows != nullptr;
}

void repack_r16(DType t, uint8_t* data, int64_t rows, int64_t k) { repack_r16_as(r16_type_of(t), data, rows, k); }

void repack_r16_as(DType r, uint8_t* data, int64_t rows, int64_t k) {
  const DType t = plain_type_of(r);
  LLMOPT_CHECK(rows >= 0 && r != t && (r == r16_type_of(t) || r == DType::kQ6_KR16X3));
  const Geometry g = geometry(t, k);
  const int64_t n_groups = rows / kR16Rows;
  auto groups = [&](int64_t g0, int64_t g1) {
    std::vector<uint8_t> plain(g.group_bytes());
    for (int64_t grp = g0; grp < g1; ++grp) {
      uint8_t* base = data + static_cast<size_t>(grp) * g.group_bytes();
      std::memcpy(plain.data(), base, plain.size());
      if (t == DType::kF32 || t == DType::kF16) {  // a transpose of 16 rows: element k of row j at 16 k + j
        if (t == DType::kF32) {
          transpose16(reinterpret_cast<const uint32_t*>(plain.data()), reinterpret_cast<uint32_t*>(base), k);
        } else {
          transpose16(reinterpret_cast<const uint16_t*>(plain.data()), reinterpret_cast<uint16_t*>(base), k);
        }
        continue;
      }
      for (int64_t j = 0; j < kR16Rows; ++j) {
        for (int64_t b = 0; b < g.nb; ++b) {
          g.to_group(base, plain.data() + static_cast<size_t>(j * g.nb + b) * static_cast<size_t>(g.block_bytes), b, j);
        }
      }
      if (r == DType::kQ6_KR16X3) for_each_q6k_super(base, kR16Rows, k, q6k_to_planes);
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
  LLMOPT_CHECK(rows >= 0 && src != dst && is_r16(r));
  const Geometry g = geometry(plain_type_of(r), k);
  // rows past the last whole group are in the file layout already
  const size_t grouped = static_cast<size_t>(rows / kR16Rows) * g.group_bytes();
  std::memcpy(dst + grouped, src + grouped, static_cast<size_t>(rows % kR16Rows * g.nb * g.block_bytes));
  for (int64_t grp = 0; grp < rows / kR16Rows; ++grp) {
    const uint8_t* base = src + static_cast<size_t>(grp) * g.group_bytes();
    uint8_t* out = dst + static_cast<size_t>(grp) * g.group_bytes();
    for (int64_t j = 0; j < kR16Rows; ++j) {
      for (int64_t b = 0; b < g.nb; ++b) {
        uint8_t* blk = out + static_cast<size_t>(j * g.nb + b) * static_cast<size_t>(g.block_bytes);
        g.to_block(base, blk, b, j);
        // three planes: d is where kQ6_KR16 has it; ql, qh and the scales come from their own places
        if (r == DType::kQ6_KR16X3) q6k_planes_row(base + static_cast<size_t>(b * kQ6Super), j, blk);
      }
    }
  }
}

void dequantize_r16_row(DType rt, const uint8_t* data, int64_t rows, int64_t k, int64_t r, float* dst) {
  LLMOPT_CHECK(r >= 0 && r < rows && is_r16(rt));
  const DType plain = plain_type_of(rt);
  const Geometry g = geometry(plain, k);
  if (r >= rows / kR16Rows * kR16Rows) {  // past the last whole group: the file layout
    dequantize_row(plain, data + static_cast<size_t>(r * g.nb * g.block_bytes), dst, k);
    return;
  }
  const uint8_t* base = data + static_cast<size_t>(r / kR16Rows) * g.group_bytes();
  const int64_t j = r % kR16Rows;
  std::vector<uint8_t> row(static_cast<size_t>(g.nb * g.block_bytes));
  for (int64_t b = 0; b < g.nb; ++b) {
    uint8_t* blk = row.data() + static_cast<size_t>(b) * static_cast<size_t>(g.block_bytes);
    g.to_block(base, blk, b, j);
    // three planes: d is where kQ6_KR16 has it; ql, qh and the scales come from their own places
    if (rt == DType::kQ6_KR16X3) q6k_planes_row(base + static_cast<size_t>(b * kQ6Super), j, blk);
  }
  dequantize_row(plain, row.data(), dst, k);
}

}  // namespace llmopt::kernels
