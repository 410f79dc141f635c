// Q8_0, Q4_0 and Q4_1 weights regrouped by 16 rows (DType::kQ8_0R16 / kQ4_0R16 / kQ4_1R16,
// kernels/repack.h): the
// layout against its documented byte formula, the exact inverse, and the products on every ISA
// against the plain-layout kernels (the same exact integer block sums and the same float operations:
// equal bits).
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/thread_pool.h"
#include "kernels/isa_test_util.h"
#include "kernels/kernels.h"
#include "kernels/ref/blocks.h"
#include "kernels/ref/ref.h"
#include "kernels/repack.h"
#include "kernels/r16_test_util.h"

namespace llmopt::kernels {
namespace {

using test::IsaGuard;
using test::supported_isas;

int64_t payload_bytes(DType t) { return t == DType::kQ8_0 ? 32 : 16; }
int64_t halves(DType t) { return t == DType::kQ4_1 ? 2 : 1; }  // f16 values at a block's head

// Random rows of t (Q8_0 / Q4_0 / Q4_1): every payload byte value (-128 codes included), scales (and
// mins) of either sign.
std::vector<uint8_t> random_rows(DType t, int64_t rows, int64_t k, std::mt19937& rng) {
  const size_t block = static_cast<size_t>(2 * halves(t) + payload_bytes(t));
  std::vector<uint8_t> out(static_cast<size_t>(rows * (k / 32)) * block);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> scale(0.001f, 0.05f);
  for (auto& b : out) b = static_cast<uint8_t>(byte(rng));
  for (size_t off = 0; off < out.size(); off += block) {
    for (int64_t v = 0; v < halves(t); ++v) {
      const uint16_t d = fp32_to_fp16(byte(rng) < 128 ? -scale(rng) : scale(rng));
      std::memcpy(out.data() + off + 2 * v, &d, 2);
    }
  }
  return out;
}

class KernelsR16 : public ::testing::TestWithParam<DType> {};

TEST_P(KernelsR16, LayoutFollowsItsFormulaAndUnpacksExactly) {
  const DType t = GetParam(), rt = r16_type_of(t);
  ASSERT_NE(rt, t);
  EXPECT_EQ(plain_type_of(rt), t);
  const int64_t p = payload_bytes(t), h = halves(t);
  std::mt19937 rng(16);
  for (int64_t k : {32, 96, 800}) {
    // 53 rows: three groups, then 5 rows that stay in the file layout
    const int64_t rows = k == 96 ? 53 : 48, nb = k / 32, block = 2 * h + p;
    const std::vector<uint8_t> plain = random_rows(t, rows, k, rng);
    std::vector<uint8_t> packed = plain;
    repack_r16(t, packed.data(), rows, k);
    ASSERT_NE(packed, plain);
    // repack.h: group g holds [nb][16] f16 scales, (Q4_1) [nb][16] f16 mins, then payload byte i of
    // block b of row j at nb * 32 H + 16 P b + 64 (i / 4) + 4 j + i % 4.
    for (int64_t r = 0; r < rows; ++r) {
      if (r >= rows / 16 * 16) {
        ASSERT_EQ(std::memcmp(packed.data() + r * nb * block, plain.data() + r * nb * block, nb * block), 0)
            << "tail row " << r;
      }
      const uint8_t* group = packed.data() + (r / 16) * 16 * nb * block;
      const int64_t j = r % 16;
      if (r >= rows / 16 * 16) group = nullptr;  // the formula below is for grouped rows
      for (int64_t b = 0; b < nb && group != nullptr; ++b) {
        const uint8_t* blk = plain.data() + (r * nb + b) * block;
        for (int64_t v = 0; v < h; ++v) {
          ASSERT_EQ(std::memcmp(group + nb * 32 * v + 2 * (16 * b + j), blk + 2 * v, 2), 0)
              << "f16 " << v << " r=" << r << " b=" << b;
        }
        for (int64_t i = 0; i < p; ++i) {
          ASSERT_EQ(group[nb * 32 * h + 16 * p * b + 64 * (i / 4) + 4 * j + i % 4], blk[2 * h + i])
              << "payload r=" << r << " b=" << b << " i=" << i;
        }
      }
      std::vector<float> want(static_cast<size_t>(k)), got(want.size());
      dequantize_row(t, plain.data() + r * nb * block, want.data(), k);
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
}

// Tensors of 8 MB or more are regrouped on several threads: the same bytes as group by group.
TEST(KernelsR16Large, SeveralThreadsGiveTheSameBytes) {
  std::mt19937 rng(1617);
  const int64_t rows = 2048, k = 4096, group = 16 * (k / 32) * 34;
  const std::vector<uint8_t> plain = random_rows(DType::kQ8_0, rows, k, rng);
  ASSERT_GE(plain.size(), size_t{8} << 20);
  std::vector<uint8_t> whole = plain, pieces = plain;
  repack_r16(DType::kQ8_0, whole.data(), rows, k);
  for (int64_t g = 0; g < rows / 16; ++g) repack_r16(DType::kQ8_0, pieces.data() + g * group, 16, k);
  EXPECT_EQ(whole, pieces);
  std::vector<uint8_t> back(plain.size());
  unpack_r16(DType::kQ8_0R16, whole.data(), rows, k, back.data());
  EXPECT_EQ(back, plain);
}

TEST_P(KernelsR16, AtLeastOneGroupAndNeverAFileType) {
  const DType t = GetParam();
  const size_t block = static_cast<size_t>(2 * halves(t) + payload_bytes(t));
  std::vector<uint8_t> bytes(17 * block);
  EXPECT_TRUE(can_repack_r16(TensorView{t, {16, 32}, bytes.data(), 16 * block}));
  EXPECT_TRUE(can_repack_r16(TensorView{t, {17, 32}, bytes.data(), 17 * block}));
  EXPECT_FALSE(can_repack_r16(TensorView{t, {15, 32}, bytes.data(), 15 * block}));
  EXPECT_FALSE(can_repack_r16(TensorView{t, {16, 32}, bytes.data(), 16 * block - 1}));
  EXPECT_FALSE(can_repack_r16(TensorView{DType::kQ5_0, {16, 32}, bytes.data(), 16 * 22}));
  const DType rt = r16_type_of(t);
  EXPECT_FALSE(dtype_from_name(dtype_name(rt)).has_value()) << "not a type a file or a flag may name";
  EXPECT_FALSE(dtype_info(static_cast<uint32_t>(rt)).has_value());
}

// Products against the regrouped weights equal, bit for bit, those against the file layout
// (r16_test_util.h), with and without rows past the last group, one row to several 16-row activation
// tiles (AVX2: passes of up to 16 rows; past 64 rows the groups restored to the file layout), odd and
// even block counts.
TEST_P(KernelsR16, ProductsEqualThePlainLayoutOnEveryIsa) {
  IsaGuard guard;
  const DType t = GetParam();
  std::mt19937 rng(1616);
  for (int64_t k : {32, 288, 1024}) {
    for (int64_t n_out : {16, 48, 160, 37}) {  // 37: two groups and 5 rows in the file layout
      test::expect_r16_products_equal_plain(t, random_rows(t, n_out, k, rng), n_out, k,
                                            {1, 2, 3, 4, 5, 7, 15, 16, 17, 33, 70}, rng);
    }
  }
}

// One input, several products (as Q, K, V): regrouped weights first, then one in the file layout
// (which reads the interleaved activations the regrouped kernels skip), then a Q4_0 regrouped one;
// every output equals its own matmul_bias, on every ISA, below and above the interleaving threshold.
TEST(KernelsR16Multi, MixedLayoutsInOneProductEqualSeparateProducts) {
  IsaGuard guard;
  std::mt19937 rng(161);
  const int64_t k = 288;
  std::vector<uint8_t> a = random_rows(DType::kQ8_0, 48, k, rng), b = random_rows(DType::kQ8_0, 40, k, rng),
                       c = random_rows(DType::kQ4_0, 32, k, rng);
  repack_r16(DType::kQ8_0, a.data(), 48, k);
  repack_r16(DType::kQ4_0, c.data(), 32, k);
  const TensorView wa{DType::kQ8_0R16, {48, k}, a.data(), a.size()};
  const TensorView wb{DType::kQ8_0, {40, k}, b.data(), b.size()};
  const TensorView wc{DType::kQ4_0R16, {32, k}, c.data(), c.size()};
  test::expect_multi_equals_separate({&wa, &wb, &wc}, k, {1, 5, 17, 40}, rng);
}

INSTANTIATE_TEST_SUITE_P(Kernels, KernelsR16, ::testing::Values(DType::kQ8_0, DType::kQ4_0, DType::kQ4_1),
                         [](const ::testing::TestParamInfo<DType>& info) { return std::string(dtype_name(info.param)); });

}  // namespace
}  // namespace llmopt::kernels
