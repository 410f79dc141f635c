// matmul / matmul_bias against a naive double-precision product of the dequantized weights, for every
// weight type and for shapes that are not multiples of the vector width; results must not depend on
// the number of threads.
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/thread_pool.h"
#include "kernels/kernels.h"
#include "kernels/ref/blocks.h"

namespace llmopt::kernels {
namespace {

// Byte offsets of the fp16 scale fields inside one block of a quantized type.
std::vector<size_t> scale_offsets(DType t) {
  switch (t) {
    case DType::kQ8_0:
      return {offsetof(BlockQ8_0, d)};
    case DType::kQ4_0:
      return {offsetof(BlockQ4_0, d)};
    case DType::kQ4_1:
      return {offsetof(BlockQ4_1, d), offsetof(BlockQ4_1, m)};
    case DType::kQ5_0:
      return {offsetof(BlockQ5_0, d)};
    case DType::kQ5_1:
      return {offsetof(BlockQ5_1, d), offsetof(BlockQ5_1, m)};
    case DType::kQ4_K:
      return {offsetof(BlockQ4_K, d), offsetof(BlockQ4_K, dmin)};
    case DType::kQ5_K:
      return {offsetof(BlockQ5_K, d), offsetof(BlockQ5_K, dmin)};
    case DType::kQ6_K:
      return {offsetof(BlockQ6_K, d)};
    default:
      return {};
  }
}

// Random weights of type t, shape [n_out, k]: random payload bytes with sane fp16 scales for the
// block types, random values written through quantize_row for F32/F16/BF16.
std::vector<uint8_t> random_weights(DType t, int64_t n_out, int64_t k, std::mt19937& rng) {
  const size_t row_bytes = dtype_row_bytes(t, k).value();
  std::vector<uint8_t> w(row_bytes * static_cast<size_t>(n_out));
  std::uniform_real_distribution<float> val(-1.0f, 1.0f);
  if (!dtype_info(t).quantized) {
    std::vector<float> row(static_cast<size_t>(k));
    for (int64_t r = 0; r < n_out; ++r) {
      for (auto& v : row) v = val(rng);
      quantize_row(t, row.data(), w.data() + r * row_bytes, k);
    }
    return w;
  }
  std::uniform_int_distribution<int> byte(0, 255);
  for (auto& b : w) b = static_cast<uint8_t>(byte(rng));
  std::uniform_real_distribution<float> scale(0.001f, 0.05f);
  const size_t tsz = dtype_info(t).type_size;
  for (size_t off = 0; off < w.size(); off += tsz) {
    for (size_t f : scale_offsets(t)) {
      const uint16_t h = fp32_to_fp16(val(rng) < 0 ? -scale(rng) : scale(rng));
      std::memcpy(&w[off + f], &h, 2);
    }
  }
  return w;
}

struct Shape {
  int64_t m, k, n_out;
};

std::vector<int64_t> k_values(DType t) {
  if (dtype_info(t).block_size == 256) return {256, 768};
  if (dtype_info(t).block_size == 32) return {32, 96, 288};
  return {7, 32, 96, 288};
}

// NOTE: these tests pin the reference kernels (the fast ones are checked against them in
// fast_matmul_test.cc, where the Q8 rounding of activations is accounted for).
class RefIsa {
 public:
  RefIsa() : saved_(active_isa()) { set_isa(Isa::kRef); }
  ~RefIsa() { set_isa(saved_); }

 private:
  Isa saved_;
};

class KernelsMatmul : public ::testing::TestWithParam<DType> {};

TEST_P(KernelsMatmul, MatchesNaiveDoubleProduct) {
  RefIsa ref_isa;
  const DType t = GetParam();
  std::mt19937 rng(1000 + static_cast<int>(t));
  std::uniform_real_distribution<float> val(-1.0f, 1.0f);
  ThreadPool pool1(1), pool3(3);
  for (int64_t m : {1, 3, 7}) {
    for (int64_t k : k_values(t)) {
      for (int64_t n_out : {1, 17, 100}) {
        SCOPED_TRACE(std::string(dtype_name(t)) + " m=" + std::to_string(m) + " k=" + std::to_string(k) +
                     " n_out=" + std::to_string(n_out));
        std::vector<uint8_t> wbytes = random_weights(t, n_out, k, rng);
        TensorView w{t, {n_out, k}, wbytes.data(), wbytes.size()};
        std::vector<float> x(static_cast<size_t>(m * k)), bias(static_cast<size_t>(n_out));
        for (auto& v : x) v = val(rng);
        for (auto& v : bias) v = val(rng);

        std::vector<float> wf(static_cast<size_t>(n_out * k));
        for (int64_t r = 0; r < n_out; ++r) dequantize_row(t, w.row(r), wf.data() + r * k, k);

        std::vector<float> y1(static_cast<size_t>(m * n_out)), y3(y1.size()), yb(y1.size());
        matmul(w, x.data(), m, y1.data(), pool1);
        matmul(w, x.data(), m, y3.data(), pool3);
        matmul_bias(w, bias.data(), x.data(), m, yb.data(), pool3);
        for (int64_t i = 0; i < m; ++i) {
          for (int64_t j = 0; j < n_out; ++j) {
            double ref = 0.0, mag = 0.0;
            for (int64_t c = 0; c < k; ++c) {
              const double p = static_cast<double>(x[i * k + c]) * wf[j * k + c];
              ref += p;
              mag += std::fabs(p);
            }
            // NOTE: the kernel sums in f32 with 16 partial sums, so each partial sum sees at most
            // k/16 + 4 roundings; the error is bounded by (k/16 + 4) * 2^-24 * sum|x*w|, about 1.3e-6
            // * sum|x*w| for k = 288 and 3e-6 for k = 768. 1e-5 of sum|x*w| leaves margin without
            // hiding a wrong element (a single misdecoded weight is off by ~|x*w| ~ sum|x*w| / k).
            const double tol = 1e-5 * mag + 1e-30;
            const size_t idx = static_cast<size_t>(i * n_out + j);
            ASSERT_NEAR(y1[idx], ref, tol) << "row " << i << " col " << j;
            ASSERT_EQ(y1[idx], y3[idx]) << "thread count changed the result at " << i << "," << j;
            ASSERT_NEAR(yb[idx], ref + bias[j], tol + 1e-7) << "bias, row " << i << " col " << j;
          }
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Kernels, KernelsMatmul,
                         ::testing::Values(DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0,
                                           DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kQ4_K,
                                           DType::kQ5_K, DType::kQ6_K),
                         [](const ::testing::TestParamInfo<DType>& info) {
                           return std::string(dtype_name(info.param));
                         });

// F32 weights at an odd address take the copying path; the result is the same bit for bit.
TEST(KernelsMatmulEdge, UnalignedF32WeightsGiveSameResult) {
  RefIsa ref_isa;
  std::mt19937 rng(7);
  const int64_t m = 3, k = 45, n_out = 9;
  std::vector<uint8_t> wbytes = random_weights(DType::kF32, n_out, k, rng);
  std::vector<uint8_t> shifted(wbytes.size() + 1);
  std::memcpy(shifted.data() + 1, wbytes.data(), wbytes.size());
  TensorView w{DType::kF32, {n_out, k}, wbytes.data(), wbytes.size()};
  TensorView ws{DType::kF32, {n_out, k}, shifted.data() + 1, wbytes.size()};
  std::vector<float> x(static_cast<size_t>(m * k));
  std::uniform_real_distribution<float> val(-1.0f, 1.0f);
  for (auto& v : x) v = val(rng);
  std::vector<float> y(static_cast<size_t>(m * n_out)), ys(y.size());
  ThreadPool pool(2);
  matmul(w, x.data(), m, y.data(), pool);
  matmul(ws, x.data(), m, ys.data(), pool);
  for (size_t i = 0; i < y.size(); ++i) EXPECT_EQ(y[i], ys[i]) << i;
}

// A large k (several dequantization tiles per thread, more rows than threads).
TEST(KernelsMatmulEdge, LongRowsManyTiles) {
  RefIsa ref_isa;
  std::mt19937 rng(11);
  const int64_t m = 2, k = 4096, n_out = 37;
  std::vector<uint8_t> wbytes = random_weights(DType::kQ4_K, n_out, k, rng);
  TensorView w{DType::kQ4_K, {n_out, k}, wbytes.data(), wbytes.size()};
  std::vector<float> x(static_cast<size_t>(m * k));
  std::uniform_real_distribution<float> val(-1.0f, 1.0f);
  for (auto& v : x) v = val(rng);
  std::vector<float> y1(static_cast<size_t>(m * n_out)), y3(y1.size()), row(static_cast<size_t>(k));
  ThreadPool pool1(1), pool3(3);
  matmul(w, x.data(), m, y1.data(), pool1);
  matmul(w, x.data(), m, y3.data(), pool3);
  for (int64_t j = 0; j < n_out; ++j) {
    dequantize_row(DType::kQ4_K, w.row(j), row.data(), k);
    for (int64_t i = 0; i < m; ++i) {
      double ref = 0.0, mag = 0.0;
      for (int64_t c = 0; c < k; ++c) {
        ref += static_cast<double>(x[i * k + c]) * row[c];
        mag += std::fabs(static_cast<double>(x[i * k + c]) * row[c]);
      }
      // (k/16 + 4) * 2^-24 = 1.6e-5 bounds the f32 error here.
      EXPECT_NEAR(y1[i * n_out + j], ref, 2e-5 * mag);
      EXPECT_EQ(y1[i * n_out + j], y3[i * n_out + j]);
    }
  }
}

}  // namespace
}  // namespace llmopt::kernels
