// Q4_K, Q5_K and Q6_K weights regrouped by 16 rows (DType::kQ4_KR16 / kQ5_KR16 / kQ6_KR16, kernels/repack.h): the layout
// against its documented byte formula, the exact inverse, and the products on every ISA against the
// file-layout kernels of AVX2 (another layout and other code: the same exact integer sub-block sums and the
// same float operations, so equal bits).
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/thread_pool.h"
#include "kernels/isa_test_util.h"
#include "kernels/dispatch.h"
#include "kernels/kernels.h"
#include "kernels/ref/blocks.h"
#include "kernels/ref/ref.h"
#include "kernels/repack.h"
#include "kernels/r16_test_util.h"

namespace llmopt::kernels {
namespace {

using test::IsaGuard;
using test::supported_isas;

int64_t k_super_bytes(DType t) { return t == DType::kQ4_K ? 144 : t == DType::kQ5_K ? 176 : 210; }  // per 256

// Random Q4_K / Q5_K / Q6_K rows: every scale and code byte value; the f16 scales (Q4_K: d, dmin; Q6_K: d)
// of either sign.
std::vector<uint8_t> random_k_rows(DType t, int64_t rows, int64_t k, std::mt19937& rng) {
  const int64_t sup = k_super_bytes(t);
  std::vector<uint8_t> out(static_cast<size_t>(rows * (k / 256) * sup));
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> scale(0.0005f, 0.01f);
  for (auto& b : out) b = static_cast<uint8_t>(byte(rng));
  for (size_t off = 0; off < out.size(); off += static_cast<size_t>(sup)) {
    const bool q6 = t == DType::kQ6_K;  // d at 208; Q4_K / Q5_K: d, dmin at 0, 2
    for (int v = 0; v < (q6 ? 1 : 2); ++v) {
      const uint16_t d = fp32_to_fp16(byte(rng) < 128 ? -scale(rng) : scale(rng));
      std::memcpy(out.data() + off + (q6 ? 208 : 2 * v), &d, 2);
    }
  }
  return out;
}

// Where byte i of a plain super-block of row j goes in its 16-row super-block (repack.h).
int64_t k_packed_offset(DType t, int64_t i, int64_t j) {
  auto chunked = [&](int64_t start, int64_t src) { return start + 64 * ((i - src) / 4) + 4 * j + (i - src) % 4; };
  if (t == DType::kQ4_K || t == DType::kQ5_K) {  // d, dmin, scales[12], (Q5_K: qh[32]), qs[128]
    if (i < 2) return 2 * j + i;
    if (i < 4) return 32 + 2 * j + (i - 2);
    if (i < 16) return chunked(64, 4);
    if (t == DType::kQ4_K) return chunked(256, 16);
    if (i < 48) return chunked(256, 16);  // qh -> 256 .. 767
    return chunked(768, 48);
  }
  // Q6_K: ql[128], qh[64], scales[16], d -> scales at 0, ql at 256, qh at 2304, d at 3328
  if (i < 128) return chunked(256, 0);
  if (i < 192) return chunked(2304, 128);
  if (i < 208) return chunked(0, 192);
  return 3328 + 2 * j + (i - 208);
}

class KernelsR16K : public ::testing::TestWithParam<DType> {};

TEST_P(KernelsR16K, LayoutFollowsItsFormulaAndUnpacksExactly) {
  const DType t = GetParam(), rt = r16_type_of(t);
  const int64_t kSuper = k_super_bytes(t);
  ASSERT_NE(rt, t);
  EXPECT_EQ(plain_type_of(rt), t);
  std::mt19937 rng(4);
  for (int64_t k : {256, 768}) {
    const int64_t rows = k == 256 ? 53 : 48, nsb = k / 256;  // 53: 5 rows past the groups
    const std::vector<uint8_t> plain = random_k_rows(t, rows, k, rng);
    std::vector<uint8_t> packed = plain;
    repack_r16(t, packed.data(), rows, k);
    ASSERT_NE(packed, plain);
    for (int64_t r = 0; r < rows; ++r) {
      const int64_t j = r % 16;
      const bool tail = r >= rows / 16 * 16;  // stays in the file layout
      if (tail) {
        ASSERT_EQ(std::memcmp(packed.data() + r * nsb * kSuper, plain.data() + r * nsb * kSuper, nsb * kSuper), 0)
            << "tail row " << r;
      }
      for (int64_t b = 0; b < nsb && !tail; ++b) {
        const uint8_t* sup = packed.data() + (r / 16) * 16 * nsb * kSuper + 16 * kSuper * b;
        const uint8_t* blk = plain.data() + (r * nsb + b) * kSuper;
        for (int64_t i = 0; i < kSuper; ++i) {
          ASSERT_EQ(sup[k_packed_offset(t, i, j)], blk[i]) << "byte " << i << " r=" << r << " b=" << b;
        }
      }
      std::vector<float> want(static_cast<size_t>(k)), got(want.size());
      dequantize_row(t, plain.data() + r * nsb * kSuper, want.data(), k);
      dequantize_r16_row(rt, packed.data(), rows, k, r, got.data());
      ASSERT_EQ(want, got) << "row " << r;
      const TensorView v{rt, {rows, k}, packed.data(), packed.size()};
      dequantize_view_row(v, r, got.data());
      ASSERT_EQ(want, got) << "view row " << r;
    }
    std::vector<uint8_t> back(plain.size());
    unpack_r16(rt, packed.data(), rows, k, back.data());
    EXPECT_EQ(back, plain);
  }
  std::vector<uint8_t> bytes(17 * kSuper);
  EXPECT_TRUE(can_repack_r16(TensorView{t, {16, 256}, bytes.data(), static_cast<size_t>(16 * kSuper)}));
  EXPECT_TRUE(can_repack_r16(TensorView{t, {17, 256}, bytes.data(), static_cast<size_t>(17 * kSuper)}));
  EXPECT_FALSE(can_repack_r16(TensorView{t, {15, 256}, bytes.data(), static_cast<size_t>(15 * kSuper)}));
  EXPECT_FALSE(can_repack_r16(TensorView{t, {16, 256}, bytes.data(), static_cast<size_t>(16 * kSuper - 1)}));
  EXPECT_FALSE(dtype_from_name(dtype_name(rt)).has_value()) << "not a type a file or a flag may name";
  EXPECT_FALSE(dtype_info(static_cast<uint32_t>(rt)).has_value());
}

// Products against the regrouped weights equal, bit for bit, those against the file layout
// (r16_test_util.h), for 1 to 70 activation rows (AVX2: passes of up to 16 rows, and past 64 rows
// the groups restored to the file layout), with and without rows past the last group.
TEST_P(KernelsR16K, ProductsEqualThePlainLayoutOnEveryIsa) {
  IsaGuard guard;
  const DType t = GetParam();
  std::mt19937 rng(4416);
  for (int64_t k : {256, 768}) {
    for (int64_t n_out : {16, 80, 21}) {  // 21: a group and 5 rows in the file layout
      test::expect_r16_products_equal_plain(t, random_k_rows(t, n_out, k, rng), n_out, k,
                                            {1, 2, 3, 4, 5, 9, 16, 33, 70}, rng);
    }
  }
}

// The unsigned code (q + 32, 0..63) of element i of a Q6_K file super-block, by the file format's
// definition (ql: low nibbles of elements l and l + 64 of each 128 in bytes l / l + 32 of its 64; qh:
// bit pairs 0..3 of elements l, l + 32, l + 64, l + 96).
int q6k_code(const uint8_t* blk, int64_t i) {
  const int64_t n = i / 128, c = i % 128 / 32, l = i % 32;
  const uint8_t ql = blk[64 * n + 32 * (c & 1) + l], qh = blk[128 + 32 * n + l];
  return (c < 2 ? ql & 15 : ql >> 4) | (qh >> (2 * c) & 3) << 4;
}

// kQ6_KR16X3 (repack.h): each code byte follows the three-plane formula computed from the file's
// codes, the scales are k-major, d sits where kQ6_KR16 has it; rows, views and the whole tensor come
// back exactly.
TEST(KernelsR16KPlanes, Q6KThreePlanesFollowTheFormulaAndUnpackExactly) {
  const DType rt = DType::kQ6_KR16X3;
  EXPECT_EQ(plain_type_of(rt), DType::kQ6_K);
  EXPECT_FALSE(dtype_from_name(dtype_name(rt)).has_value());
  std::mt19937 rng(6);
  for (int64_t k : {256, 768}) {
    const int64_t rows = k == 256 ? 37 : 32, nsb = k / 256;
    const std::vector<uint8_t> plain = random_k_rows(DType::kQ6_K, rows, k, rng);
    std::vector<uint8_t> packed = plain;
    repack_r16_as(rt, packed.data(), rows, k);
    for (int64_t r = 0; r < rows / 16 * 16; ++r) {
      const int64_t j = r % 16;
      for (int64_t b = 0; b < nsb; ++b) {
        const uint8_t* sup = packed.data() + (r / 16) * 16 * nsb * 210 + 16 * 210 * b;
        const uint8_t* blk = plain.data() + (r * nsb + b) * 210;
        for (int64_t i = 192; i < 208; ++i) ASSERT_EQ(sup[16 * (i - 192) + j], blk[i]) << "scale " << i - 192;
        for (int64_t i = 208; i < 210; ++i) ASSERT_EQ(sup[k_packed_offset(DType::kQ6_K, i, j)], blk[i]) << i;
        for (int h = 0; h < 2; ++h) {
          for (int q = 0; q < 8; ++q) {
            for (int p = 0; p < 3; ++p) {
              for (int e = 0; e < 4; ++e) {
                const int u = q6k_code(blk, 128 * h + 32 * p + 4 * q + e);
                const int u3 = q6k_code(blk, 128 * h + 96 + 4 * q + e);
                ASSERT_EQ(sup[256 + 64 * (24 * h + 3 * q + p) + 4 * j + e], u | (u3 >> (2 * p) & 3) << 6)
                    << "r=" << r << " b=" << b << " h=" << h << " q=" << q << " p=" << p << " e=" << e;
              }
            }
          }
        }
      }
    }
    for (int64_t r = 0; r < rows; ++r) {
      std::vector<float> want(static_cast<size_t>(k)), got(want.size());
      dequantize_row(DType::kQ6_K, plain.data() + r * nsb * 210, want.data(), k);
      dequantize_r16_row(rt, packed.data(), rows, k, r, got.data());
      ASSERT_EQ(want, got) << "row " << r;
      dequantize_view_row(TensorView{rt, {rows, k}, packed.data(), packed.size()}, r, got.data());
      ASSERT_EQ(want, got) << "view row " << r;
    }
    std::vector<uint8_t> back(plain.size());
    unpack_r16(rt, packed.data(), rows, k, back.data());
    EXPECT_EQ(back, plain);
  }
}

// Products against kQ6_KR16X3 equal those against the file layout bit for bit where an ISA has a kernel
// for it (AVX2), the reference path's elsewhere; 1 to 70 activation rows (decode, passes, the restore).
TEST(KernelsR16KPlanes, Q6KThreePlaneProductsEqualThePlainLayout) {
  IsaGuard guard;
  std::mt19937 rng(4418);
  for (int64_t k : {256, 768}) {
    for (int64_t n_out : {16, 80, 21}) {
      test::expect_r16_products_equal_plain(DType::kQ6_K, random_k_rows(DType::kQ6_K, n_out, k, rng), n_out, k,
                                            {1, 2, 3, 4, 5, 9, 16, 33, 70}, rng, DType::kQ6_KR16X3);
    }
  }
}

// Where the selected ISA has a kernel for the three planes, loading prefers them for Q6_K.
TEST(KernelsR16KPlanes, PreferredTypeFollowsTheIsa) {
  IsaGuard guard;
  for (Isa isa : supported_isas()) {
    set_isa(isa);
    const IsaKernels* k = active_isa_kernels();
    const bool planes = k != nullptr && k->find_matmul(DType::kQ6_KR16X3).rows != nullptr;
    EXPECT_EQ(preferred_r16_type(DType::kQ6_K), planes ? DType::kQ6_KR16X3 : DType::kQ6_KR16) << isa_name(isa);
    EXPECT_EQ(preferred_r16_type(DType::kQ4_K), DType::kQ4_KR16);
    if (isa == Isa::kAvx2) {
      EXPECT_TRUE(planes);
    }
  }
}

// One input, four products (as Q, K, V, ...): regrouped Q4_K and Q6_K weights (both Q6_K layouts) and
// Q4_K rows in the file layout; each output equals its own matmul_bias on every ISA.
TEST(KernelsR16KMulti, MixedLayoutsInOneProductEqualSeparateProducts) {
  IsaGuard guard;
  std::mt19937 rng(4417);
  const int64_t k = 512;
  std::vector<uint8_t> a = random_k_rows(DType::kQ4_K, 32, k, rng), b = random_k_rows(DType::kQ4_K, 48, k, rng),
                       c = random_k_rows(DType::kQ6_K, 19, k, rng);
  std::vector<uint8_t> d = random_k_rows(DType::kQ6_K, 35, k, rng);
  repack_r16(DType::kQ4_K, a.data(), 32, k);
  repack_r16(DType::kQ6_K, c.data(), 19, k);
  repack_r16_as(DType::kQ6_KR16X3, d.data(), 35, k);
  const TensorView wa{DType::kQ4_KR16, {32, k}, a.data(), a.size()};
  const TensorView wb{DType::kQ4_K, {48, k}, b.data(), b.size()};
  const TensorView wc{DType::kQ6_KR16, {19, k}, c.data(), c.size()};
  const TensorView wd{DType::kQ6_KR16X3, {35, k}, d.data(), d.size()};  // (the reference path elsewhere)
  test::expect_multi_equals_separate({&wa, &wb, &wc, &wd}, k, {1, 6, 17, 70}, rng);
}

INSTANTIATE_TEST_SUITE_P(Kernels, KernelsR16K, ::testing::Values(DType::kQ4_K, DType::kQ5_K, DType::kQ6_K),
                         [](const ::testing::TestParamInfo<DType>& info) { return std::string(dtype_name(info.param)); });

}  // namespace
}  // namespace llmopt::kernels
