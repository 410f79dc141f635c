// F32 and F16 weights regrouped by 16 rows (DType::kF32R16 / kF16R16, kernels/repack.h): the layout
// against its byte formula, the exact inverse, and the products. On the ISAs with a kernel for the
// layout each output of the whole groups is one chain of fmas over k in order, so it equals, bit for
// bit, the same chain written with std::fma (an independent scalar statement of the arithmetic); every
// output, the tail rows' included, equals its one-row call (batch invariance) and stays within the
// rounding bound of the exact product.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/thread_pool.h"
#include "kernels/isa_test_util.h"
#include "kernels/kernels.h"
#include "kernels/repack.h"

namespace llmopt::kernels {
namespace {

using test::IsaGuard;
using test::supported_isas;

// rows x k values of type t (F32 or F16), as bytes, and the same values as f32.
struct FloatRows {
  std::vector<uint8_t> bytes;
  std::vector<float> values;
};

FloatRows random_float_rows(DType t, int64_t rows, int64_t k, std::mt19937& rng) {
  std::uniform_real_distribution<float> val(-1.0f, 1.0f);
  FloatRows out;
  out.values.resize(static_cast<size_t>(rows * k));
  out.bytes.resize(static_cast<size_t>(rows * k) * (t == DType::kF32 ? 4 : 2));
  for (size_t i = 0; i < out.values.size(); ++i) {
    if (t == DType::kF32) {
      out.values[i] = val(rng);
      std::memcpy(out.bytes.data() + 4 * i, &out.values[i], 4);
    } else {
      const uint16_t h = fp32_to_fp16(val(rng));
      out.values[i] = fp16_to_fp32(h);
      std::memcpy(out.bytes.data() + 2 * i, &h, 2);
    }
  }
  return out;
}

TEST(R16Float, LayoutMatchesTheFormulaAndUnpacksExactly) {
  std::mt19937 rng(11);
  for (DType t : {DType::kF32, DType::kF16}) {
    SCOPED_TRACE(dtype_name(t));
    const int64_t eb = t == DType::kF32 ? 4 : 2;
    const int64_t rows = 37, k = 29;  // two groups and 5 rows in the file layout
    const FloatRows plain = random_float_rows(t, rows, k, rng);
    std::vector<uint8_t> packed = plain.bytes;
    repack_r16(t, packed.data(), rows, k);
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < k; ++c) {
        const size_t from = static_cast<size_t>((r * k + c) * eb);
        // group g: element c of row j at 16 * eb * c + eb * j; the tail rows where they were
        const size_t to = r < 32 ? static_cast<size_t>((r / 16) * 16 * k * eb + 16 * eb * c + eb * (r % 16)) : from;
        ASSERT_EQ(std::memcmp(packed.data() + to, plain.bytes.data() + from, static_cast<size_t>(eb)), 0)
            << "row " << r << " col " << c;
      }
    }
    std::vector<uint8_t> back(packed.size());
    unpack_r16(r16_type_of(t), packed.data(), rows, k, back.data());
    EXPECT_EQ(back, plain.bytes);
    std::vector<float> row(static_cast<size_t>(k));
    for (int64_t r = 0; r < rows; ++r) {
      dequantize_r16_row(r16_type_of(t), packed.data(), rows, k, r, row.data());
      for (int64_t c = 0; c < k; ++c) ASSERT_EQ(row[c], plain.values[r * k + c]);
    }
  }
}

TEST(R16Float, ProductsAreOneFmaChainPerOutputAndBatchInvariant) {
  IsaGuard guard;
  std::mt19937 rng(12);
  std::uniform_real_distribution<float> val(-1.0f, 1.0f);
  ThreadPool pool1(1), pool3(3);
  for (DType t : {DType::kF32, DType::kF16}) {
    // 9 groups (decode: two passes of four and one alone; batches: four pairs and one alone) and 5 tail
    // rows; a short k, GPT-2's width, and rows long enough that 30 activation rows take two passes of
    // 256 KiB (the AVX2 shape).
    for (int64_t k : {int64_t{29}, int64_t{768}, int64_t{4100}}) {
      const int64_t n_out = 16 * 9 + 5;
      const FloatRows plain = random_float_rows(t, n_out, k, rng);
      std::vector<uint8_t> packed = plain.bytes;
      repack_r16(t, packed.data(), n_out, k);
      const TensorView wr{r16_type_of(t), {n_out, k}, packed.data(), packed.size()};
      for (bool with_bias : {false, true}) {
        std::vector<float> bias(static_cast<size_t>(n_out));
        for (auto& v : bias) v = val(rng);
        const float* b = with_bias ? bias.data() : nullptr;
        for (int64_t m : {1, 2, 5, 12, 13, 30}) {
          std::vector<float> x(static_cast<size_t>(m * k));
          for (auto& v : x) v = val(rng);
          for (Isa isa : supported_isas()) {
            SCOPED_TRACE(std::string(dtype_name(t)) + " " + isa_name(isa) + " k=" + std::to_string(k) +
                         " m=" + std::to_string(m) + (with_bias ? " bias" : ""));
            set_isa(isa);
            const bool fast = prefers_r16(t);
            std::vector<float> got(static_cast<size_t>(m * n_out)), got3(got.size()), y1(static_cast<size_t>(n_out));
            matmul_bias(wr, b, x.data(), m, got.data(), pool1);
            matmul_bias(wr, b, x.data(), m, got3.data(), pool3);
            for (int64_t i = 0; i < m; ++i) {
              matmul_bias(wr, b, x.data() + i * k, 1, y1.data(), pool3);
              for (int64_t r = 0; r < n_out; ++r) {
                const float g = got[i * n_out + r];
                ASSERT_EQ(got3[i * n_out + r], g) << "3 threads, row " << i << " out " << r;
                ASSERT_EQ(y1[r], g) << "alone, row " << i << " out " << r;
                double exact = with_bias ? bias[r] : 0.0, mag = with_bias ? std::fabs(bias[r]) : 0.0;
                float chain = 0.0f;
                for (int64_t c = 0; c < k; ++c) {
                  const float w = plain.values[r * k + c];
                  exact += static_cast<double>(w) * x[i * k + c];
                  mag += std::fabs(static_cast<double>(w) * x[i * k + c]);
                  chain = std::fma(x[i * k + c], w, chain);
                }
                if (with_bias) chain += bias[r];
                // k + 1 roundings of at most 2^-24 relative each, on partial sums bounded by mag.
                ASSERT_NEAR(g, exact, (static_cast<double>(k) + 2.0) * std::ldexp(mag, -24) + 1e-30)
                    << "row " << i << " out " << r;
                if (fast && r < n_out / 16 * 16) {
                  ASSERT_EQ(g, chain) << "row " << i << " out " << r;
                }
              }
            }
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace llmopt::kernels
