// Q8_0 weights regrouped by 16 rows (DType::kQ8_0R16, kernels/repack.h): the layout against its
// documented byte formula, the exact inverse, and the products on every ISA against the plain Q8_0
// kernels (the same exact integer block sums and the same float operations: equal bits).
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

namespace llmopt::kernels {
namespace {

using test::IsaGuard;
using test::supported_isas;

// Random Q8_0 rows: every code value (-128 included), scales of either sign.
std::vector<uint8_t> random_q8_0(int64_t rows, int64_t k, std::mt19937& rng) {
  std::vector<uint8_t> out(static_cast<size_t>(rows * (k / 32)) * sizeof(BlockQ8_0));
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_real_distribution<float> scale(0.001f, 0.05f);
  for (auto& b : out) b = static_cast<uint8_t>(byte(rng));
  for (size_t off = 0; off < out.size(); off += sizeof(BlockQ8_0)) {
    const uint16_t d = fp32_to_fp16(byte(rng) < 128 ? -scale(rng) : scale(rng));
    std::memcpy(out.data() + off, &d, 2);
  }
  return out;
}

TEST(KernelsQ8R16, LayoutFollowsItsFormulaAndUnpacksExactly) {
  std::mt19937 rng(16);
  for (int64_t k : {32, 96, 800}) {
    const int64_t rows = 48, nb = k / 32;
    const std::vector<uint8_t> plain = random_q8_0(rows, k, rng);
    std::vector<uint8_t> packed = plain;
    repack_q8_0_r16(packed.data(), rows, k);
    ASSERT_NE(packed, plain);
    // repack.h: group g holds [nb][16] f16 scales, then codes at nb * 32 + 512 b + 64 q + 4 j + e.
    for (int64_t r = 0; r < rows; ++r) {
      const uint8_t* group = packed.data() + (r / 16) * 16 * nb * 34;
      const int64_t j = r % 16;
      for (int64_t b = 0; b < nb; ++b) {
        const uint8_t* blk = plain.data() + (r * nb + b) * 34;
        ASSERT_EQ(std::memcmp(group + 2 * (16 * b + j), blk, 2), 0) << "scale r=" << r << " b=" << b;
        for (int64_t c = 0; c < 32; ++c) {
          ASSERT_EQ(group[nb * 32 + 512 * b + 64 * (c / 4) + 4 * j + c % 4], blk[2 + c])
              << "code r=" << r << " b=" << b << " c=" << c;
        }
      }
      std::vector<float> want(static_cast<size_t>(k)), got(want.size());
      ref::dequantize_row_q8_0(plain.data() + r * nb * 34, want.data(), k);
      dequantize_q8_0_r16_row(packed.data(), k, r, got.data());
      ASSERT_EQ(want, got) << "row " << r;
      const TensorView v{DType::kQ8_0R16, {rows, k}, packed.data(), packed.size()};
      dequantize_view_row(v, r, got.data());
      ASSERT_EQ(want, got) << "view row " << r;
    }
    std::vector<uint8_t> back(plain.size());
    unpack_q8_0_r16(packed.data(), rows, k, back.data());
    EXPECT_EQ(back, plain);
  }
}

TEST(KernelsQ8R16, OnlyWholeGroupsOfQ8_0Rows) {
  std::vector<uint8_t> bytes(static_cast<size_t>(17 * 34));
  EXPECT_TRUE(can_repack_q8_0_r16(TensorView{DType::kQ8_0, {16, 32}, bytes.data(), 16 * 34}));
  EXPECT_FALSE(can_repack_q8_0_r16(TensorView{DType::kQ8_0, {17, 32}, bytes.data(), 17 * 34}));
  EXPECT_FALSE(can_repack_q8_0_r16(TensorView{DType::kQ4_0, {16, 32}, bytes.data(), 16 * 18}));
  EXPECT_FALSE(dtype_from_name("q8_0_r16").has_value()) << "not a type a file or a flag may name";
  EXPECT_FALSE(dtype_info(static_cast<uint32_t>(DType::kQ8_0R16)).has_value());
}

// Products against the repacked weights equal, bit for bit, those against the same rows as plain
// Q8_0 on the AVX2 kernels (another layout and other code) on the ISAs with a kernel for the layout
// (AVX-512, AMX), one row to several 16-row activation tiles, 1 and 3 threads, odd and even block
// counts; elsewhere the reference path against the reference path. Each row also equals its one-row call (batch invariance).
TEST(KernelsQ8R16, ProductsEqualPlainQ8_0OnEveryIsa) {
  IsaGuard guard;
  std::mt19937 rng(1616);
  std::uniform_real_distribution<float> val(-1.0f, 1.0f);
  ThreadPool pool1(1), pool3(3);
  for (int64_t k : {32, 288, 1024}) {
    for (int64_t n_out : {16, 48, 160}) {
      const std::vector<uint8_t> plain = random_q8_0(n_out, k, rng);
      std::vector<uint8_t> packed = plain;
      repack_q8_0_r16(packed.data(), n_out, k);
      const TensorView wq{DType::kQ8_0, {n_out, k}, plain.data(), plain.size()};
      const TensorView wr{DType::kQ8_0R16, {n_out, k}, packed.data(), packed.size()};
      std::vector<float> bias(static_cast<size_t>(n_out));
      for (auto& v : bias) v = val(rng);
      for (int64_t m : {1, 2, 3, 4, 5, 7, 15, 16, 17, 33}) {
        std::vector<float> x(static_cast<size_t>(m * k));
        for (auto& v : x) v = val(rng);
        for (Isa isa : supported_isas()) {
          SCOPED_TRACE(std::string(isa_name(isa)) + " m=" + std::to_string(m) + " k=" + std::to_string(k) +
                       " n_out=" + std::to_string(n_out));
          // ISAs without a kernel for the layout take the reference path: compare with it there.
          set_isa(isa);
          set_isa(prefers_q8_0_r16() ? Isa::kAvx2 : Isa::kRef);
          std::vector<float> want(static_cast<size_t>(m * n_out)), got(want.size()), got3(want.size());
          matmul_bias(wq, bias.data(), x.data(), m, want.data(), pool1);
          set_isa(isa);
          matmul_bias(wr, bias.data(), x.data(), m, got.data(), pool1);
          matmul_bias(wr, bias.data(), x.data(), m, got3.data(), pool3);
          for (size_t i = 0; i < want.size(); ++i) {
            ASSERT_EQ(got[i], want[i]) << "element " << i;
            ASSERT_EQ(got3[i], want[i]) << "3 threads, element " << i;
          }
          std::vector<float> y1(static_cast<size_t>(n_out));
          for (int64_t i = 0; i < m; ++i) {
            matmul_bias(wr, bias.data(), x.data() + i * k, 1, y1.data(), pool3);
            for (int64_t j = 0; j < n_out; ++j) ASSERT_EQ(y1[j], got[i * n_out + j]) << "row " << i << " col " << j;
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace llmopt::kernels
