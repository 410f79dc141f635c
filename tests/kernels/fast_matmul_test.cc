// The ISA-specific matmul kernels against the scalar reference, on every ISA this CPU has (set_isa),
// for shapes that are not multiples of the block or vector width, m = 1..13 activation rows, and
// 1 vs 3 threads (bit-identical). Also: ISA selection and fallback, and the SIMD activation
// quantizer against ref::quantize_row_q8_act (bit-identical).
#include <gtest/gtest.h>

#include <cmath>
#include <cstddef>
#include <cstring>
#include <random>
#include <string>
#include <tuple>
#include <vector>

#include "core/dtype.h"
#include "core/thread_pool.h"
#include "kernels/dispatch.h"
#include "kernels/isa_test_util.h"
#include "test_util.h"
#include "kernels/kernels.h"
#include "kernels/ref/blocks.h"
#include "kernels/ref/ref.h"

namespace llmopt::kernels {
namespace {

using test::IsaGuard;
using test::supported_isas;

TEST(KernelsIsa, SelectAndFallBack) {
  IsaGuard guard;
  EXPECT_TRUE(isa_supported(Isa::kRef));
  EXPECT_STREQ(isa_name(Isa::kRef), "ref");
  EXPECT_STREQ(isa_name(Isa::kAvx2), "avx2");
  EXPECT_STREQ(isa_name(Isa::kAvx512), "avx512");
  EXPECT_STREQ(isa_name(Isa::kAmx), "amx");
  for (Isa isa : supported_isas()) {
    set_isa(isa);
    EXPECT_EQ(active_isa(), isa);
    EXPECT_STREQ(isa_name(), isa_name(isa));
    EXPECT_EQ(active_isa_kernels() == nullptr, isa == Isa::kRef);
  }
  // Asking for more than the CPU has gives the best it has.
  set_isa(Isa::kAmx);
  const Isa best = supported_isas().back();
  EXPECT_EQ(active_isa(), best);
  if (!isa_supported(Isa::kAvx2)) {
    set_isa(Isa::kAvx2);
    EXPECT_EQ(active_isa(), Isa::kRef);
  }
}

TEST(KernelsQ8Act, SimdQuantizerIsBitIdenticalToRef) {
  IsaGuard guard;
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> val(-3.0f, 3.0f);
  const int64_t n = 32 * 9;
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = val(rng);
  for (int j = 32; j < 64; ++j) x[j] = 0.0f;                               // an all-zero block
  for (int j = 64; j < 96; ++j) x[j] = static_cast<float>(j - 80) * 0.5f;  // ties at .5 steps
  x[100] = 1e-30f;                                                         // tiny values
  for (int j = 128; j < 160; ++j) x[j] = -x[j];
  std::vector<BlockQ8Act> want(static_cast<size_t>(n / 32)), got(want.size());
  ref::quantize_row_q8_act(x.data(), want.data(), n);
  for (Isa isa : supported_isas()) {
    if (isa == Isa::kRef) continue;
    set_isa(isa);
    SCOPED_TRACE(isa_name(isa));
    std::memset(got.data(), 0xAB, got.size() * sizeof(BlockQ8Act));
    active_isa_kernels()->quantize_act(x.data(), got.data(), n);
    for (size_t b = 0; b < want.size(); ++b) {
      EXPECT_EQ(got[b].d, want[b].d) << "block " << b;
      EXPECT_EQ(got[b].s, want[b].s) << "block " << b;
      EXPECT_EQ(std::memcmp(got[b].qs, want[b].qs, 32), 0) << "block " << b;
    }
  }
  // The quantization error is at most half a step.
  std::vector<float> back(static_cast<size_t>(n));
  ref::dequantize_row_q8_act(want.data(), back.data(), n);
  for (int64_t j = 0; j < n; ++j) EXPECT_LE(std::fabs(back[j] - x[j]), want[j / 32].d * 0.5001f) << j;
}

// Random weights of type t, [n_out, k], starting one byte past an aligned address (rows read from a
// file may sit anywhere). Block types get random payload bytes and sane fp16 scales / mins.
struct Weights {
  std::vector<uint8_t> bytes;
  TensorView view;
};

void random_weights(DType t, int64_t n_out, int64_t k, std::mt19937& rng, Weights* out) {
  const size_t row_bytes = dtype_row_bytes(t, k).value();
  const size_t nbytes = row_bytes * static_cast<size_t>(n_out);
  out->bytes.assign(nbytes + 1, 0);
  uint8_t* w = out->bytes.data() + 1;
  std::uniform_real_distribution<float> val(-1.0f, 1.0f);
  if (!dtype_info(t).quantized) {
    std::vector<float> row(static_cast<size_t>(k));
    for (int64_t r = 0; r < n_out; ++r) {
      for (auto& v : row) v = val(rng);
      quantize_row(t, row.data(), w + r * row_bytes, k);
    }
  } else {
    std::uniform_int_distribution<int> byte(0, 255);
    for (size_t i = 0; i < nbytes; ++i) w[i] = static_cast<uint8_t>(byte(rng));
    std::uniform_real_distribution<float> scale(0.001f, 0.05f);
    const size_t tsz = dtype_info(t).type_size;
    // Byte offsets of the fp16 scales (and mins) in one block.
    std::vector<size_t> halves;
    switch (t) {
      case DType::kQ4_1:
        halves = {offsetof(BlockQ4_1, d), offsetof(BlockQ4_1, m)};
        break;
      case DType::kQ4_1G128:
        halves = {offsetof(BlockQ4_1G128, d), offsetof(BlockQ4_1G128, m)};
        break;
      case DType::kQ5_0:
        halves = {offsetof(BlockQ5_0, d)};
        break;
      case DType::kQ5_1:
        halves = {offsetof(BlockQ5_1, d), offsetof(BlockQ5_1, m)};
        break;
      case DType::kQ4_K:
        halves = {offsetof(BlockQ4_K, d), offsetof(BlockQ4_K, dmin)};
        break;
      case DType::kQ5_K:
        halves = {offsetof(BlockQ5_K, d), offsetof(BlockQ5_K, dmin)};
        break;
      case DType::kQ6_K:
        halves = {offsetof(BlockQ6_K, d)};
        break;
      default:  // Q8_0, Q4_0
        halves = {0};
        break;
    }
    for (size_t off = 0; off < nbytes; off += tsz) {
      for (size_t h : halves) {
        const uint16_t v = fp32_to_fp16(val(rng) < 0 ? -scale(rng) : scale(rng));
        std::memcpy(w + off + h, &v, 2);
      }
    }
  }
  out->view = TensorView{t, {n_out, k}, w, nbytes};
}

std::vector<int64_t> fast_k_values(DType t) {
  if (dtype_info(t).block_size == 256) return {256, 768, 4096 + 256};
  if (dtype_info(t).block_size == 128) return {128, 384, 4096 + 128};
  if (dtype_info(t).block_size == 32) return {32, 96, 288, 4096 + 32};
  return {7, 33, 96, 289, 4096 + 32 + 5};
}

class KernelsFastMatmul : public ::testing::TestWithParam<DType> {};

TEST_P(KernelsFastMatmul, MatchesReferenceOnEveryIsa) {
  IsaGuard guard;
  const DType t = GetParam();
  const bool q8_act = dtype_info(t).quantized;
  std::mt19937 rng(2000 + static_cast<int>(t));
  std::uniform_real_distribution<float> val(-1.0f, 1.0f);
  ThreadPool pool1(1), pool3(3);
  // Under the sanitizers a subset that still reaches every path: one row, the 4-row groups, the AMX
  // threshold (5), 16-row tiles, column groups; row tiles of 16 and a remainder; at most 2M
  // multiply-adds per case.
  const std::vector<int64_t> n_outs = ::llmopt::test::sanitized_build() ? std::vector<int64_t>{1, 17, 100}
                                                               : std::vector<int64_t>{1, 3, 17, 100};
  const std::vector<int64_t> ms = ::llmopt::test::sanitized_build()
                                      ? std::vector<int64_t>{1, 3, 5, 8, 16, 27, 40}
                                      : std::vector<int64_t>{1, 2, 3, 4, 5, 6, 7, 8, 9, 13, 16, 27, 40};
  for (int64_t k : fast_k_values(t)) {
    for (int64_t n_out : n_outs) {
      Weights w;
      random_weights(t, n_out, k, rng, &w);
      std::vector<float> wf(static_cast<size_t>(n_out * k));
      for (int64_t r = 0; r < n_out; ++r) dequantize_row(t, w.view.row(r), wf.data() + r * k, k);
      for (int64_t m : ms) {  // 27, 40: units of 3 (+ 2) column groups
        // The sanitizers' time goes to the largest products (k = 4133): there only the smaller ones.
        if (::llmopt::test::sanitized_build() && m * n_out * k > (int64_t{1} << 21)) continue;
        std::vector<float> x(static_cast<size_t>(m * k)), bias(static_cast<size_t>(n_out));
        for (auto& v : x) v = val(rng);
        for (auto& v : bias) v = val(rng);
        // What the integer kernels compute exactly: the activations after their Q8 rounding.
        std::vector<float> xd = x;
        std::vector<float> step(static_cast<size_t>(m * k), 0.0f);  // Q8 step d of each element
        if (q8_act) {
          std::vector<BlockQ8Act> q(static_cast<size_t>(k / 32));
          for (int64_t i = 0; i < m; ++i) {
            ref::quantize_row_q8_act(x.data() + i * k, q.data(), k);
            ref::dequantize_row_q8_act(q.data(), xd.data() + i * k, k);
            for (int64_t c = 0; c < k; ++c) step[i * k + c] = q[c / 32].d;
          }
        }
        std::vector<float> want(static_cast<size_t>(m * n_out)), want_f32(want.size());
        ref::matmul_bias(w.view, bias.data(), xd.data(), m, want.data(), pool1);
        ref::matmul_bias(w.view, bias.data(), x.data(), m, want_f32.data(), pool1);
        for (Isa isa : supported_isas()) {
          set_isa(isa);
          SCOPED_TRACE(std::string(dtype_name(t)) + " isa=" + isa_name(isa) + " m=" + std::to_string(m) +
                       " k=" + std::to_string(k) + " n_out=" + std::to_string(n_out));
          std::vector<float> y1(want.size()), y3(want.size()), ynb(want.size());
          matmul_bias(w.view, bias.data(), x.data(), m, y1.data(), pool1);
          matmul_bias(w.view, bias.data(), x.data(), m, y3.data(), pool3);
          matmul(w.view, x.data(), m, ynb.data(), pool3);
          for (int64_t i = 0; i < m; ++i) {
            for (int64_t j = 0; j < n_out; ++j) {
              double mag = 0.0, qerr = 0.0;
              for (int64_t c = 0; c < k; ++c) {
                mag += std::fabs(static_cast<double>(xd[i * k + c]) * wf[j * k + c]);
                qerr += std::fabs(static_cast<double>(wf[j * k + c])) * step[i * k + c];
              }
              // NOTE: both sides sum in f32 in different orders. The reference keeps 16 partial sums
              // (<= k/16 + 5 roundings per term), the fast kernels 8 lanes per weight row (float types,
              // K-quants: <= k/8 + 4 roundings) or one sum of exact integer block dot products (Q8_0,
              // Q4_0/1, Q5_0/1, q4_1_g128: <= k/16 + 2 roundings): their difference is
              // at most (3k/16 + 16) * 2^-24 * sum|x*w| (~1.2e-5 at k = 1024, ~5e-5 at k = 4133).
              // A wrong element is off by about |x*w| ~ sum|x*w| / k, well above it for k <= 289,
              // where most cases run.
              const double tol = (3.0 * static_cast<double>(k) / 16.0 + 16.0) * 0x1p-24 * mag + 1e-6;
              const size_t idx = static_cast<size_t>(i * n_out + j);
              // The reference path itself does not round the activations.
              const float expected = isa == Isa::kRef ? want_f32[idx] : want[idx];
              ASSERT_NEAR(y1[idx], expected, tol) << "row " << i << " col " << j;
              ASSERT_EQ(y1[idx], y3[idx]) << "thread count changed the result at " << i << "," << j;
              ASSERT_NEAR(ynb[idx] + bias[j], y1[idx], 1e-6 + 1e-6 * std::fabs(y1[idx])) << "no bias";
              // Against the unrounded activations: each Q8 activation is off by at most half its
              // block's step d, so the product moves by at most sum |w| * d / 2 (plus float error).
              ASSERT_NEAR(y1[idx], want_f32[idx], 0.5001 * qerr + 2 * tol)
                  << "f32 x, row " << i << " col " << j;
            }
          }
        }
      }
    }
  }
}

// A row's result must not depend on how many other rows share the call (the tile shape it lands in):
// the engine's batched decode, chunked prefill and speculative verify passes all rely on it for
// outputs identical to one-token decoding.
TEST_P(KernelsFastMatmul, EachRowIsBitIdenticalToItsOneRowCall) {
  IsaGuard guard;
  const DType t = GetParam();
  std::mt19937 rng(3000 + static_cast<int>(t));
  std::uniform_real_distribution<float> val(-1.0f, 1.0f);
  ThreadPool pool(2);
  // 37 rows: with 2 threads each takes at least one whole tile of 16 weight rows (AMX) and a rest.
  const int64_t n_out = 37;
  // Float weights also with rows long enough for the k-blocked batches (tiles_float_x86.h).
  std::vector<int64_t> ks = {dtype_info(t).block_size >= 128 ? 512 : 96};
  if (!dtype_info(t).quantized) ks.push_back(8192 + 37);
  for (int64_t k : ks) {
    Weights w;
    random_weights(t, n_out, k, rng, &w);
    for (Isa isa : supported_isas()) {
      set_isa(isa);
      for (int64_t m = 2; m <= 20; ++m) {
        SCOPED_TRACE(std::string(dtype_name(t)) + " isa=" + isa_name(isa) + " m=" + std::to_string(m) +
                     " k=" + std::to_string(k));
        std::vector<float> x(static_cast<size_t>(m * k)), y(static_cast<size_t>(m * n_out)),
            y1(static_cast<size_t>(n_out));
        for (auto& v : x) v = val(rng);
        matmul(w.view, x.data(), m, y.data(), pool);
        for (int64_t i = 0; i < m; ++i) {
          matmul(w.view, x.data() + i * k, 1, y1.data(), pool);
          for (int64_t j = 0; j < n_out; ++j)
            ASSERT_EQ(y[i * n_out + j], y1[j]) << "row " << i << " col " << j;
        }
      }
    }
  }
}

// The integer block dot products are exact and every kernel of a type applies the same float
// operations to them, so batched products agree bit for bit across ISAs (AVX2's and AVX-512's column
// tiles, AMX's 16 x 16 tiles with their leftover rows), in batches from 5 to 100 rows.
TEST(KernelsBlockBatches, SameBitsOnEveryIsa) {
  IsaGuard guard;
  if (!isa_supported(Isa::kAvx2)) GTEST_SKIP() << "no AVX2 on this CPU: nothing to compare";
  std::mt19937 rng(4242);
  std::uniform_real_distribution<float> val(-1.0f, 1.0f);
  ThreadPool pool(2);
  for (DType t : {DType::kQ8_0, DType::kQ4_0, DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kQ4_1G128}) {
    // Rows of 9 and 25 blocks (12 and 28 for g128): AMX gathers a row's scales 16 blocks at a time.
    const std::vector<int64_t> ks = t == DType::kQ4_1G128 ? std::vector<int64_t>{384, 896} : std::vector<int64_t>{288, 800};
    for (int64_t n_out : {16, 53, 160}) {
      const int64_t k = ks[n_out == 53 ? 1 : 0];
      Weights w;
      random_weights(t, n_out, k, rng, &w);
      std::vector<float> bias(static_cast<size_t>(n_out));
      for (auto& v : bias) v = val(rng);
      for (int64_t m : {5, 8, 9, 15, 16, 17, 33, 64, 100}) {
        std::vector<float> x(static_cast<size_t>(m * k));
        for (auto& v : x) v = val(rng);
        set_isa(Isa::kAvx2);
        std::vector<float> want(static_cast<size_t>(m * n_out)), got(want.size());
        matmul_bias(w.view, bias.data(), x.data(), m, want.data(), pool);
        for (Isa isa : supported_isas()) {
          if (isa == Isa::kRef) continue;
          set_isa(isa);
          SCOPED_TRACE(std::string(dtype_name(t)) + " " + isa_name(isa) + " m=" + std::to_string(m) +
                       " k=" + std::to_string(k) + " n_out=" + std::to_string(n_out));
          matmul_bias(w.view, bias.data(), x.data(), m, got.data(), pool);
          for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(got[i], want[i]) << "element " << i;
        }
      }
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Kernels, KernelsFastMatmul,
                         ::testing::Values(DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0,
                                           DType::kQ4_1, DType::kQ5_0, DType::kQ5_1, DType::kQ4_K,
                                           DType::kQ5_K, DType::kQ6_K, DType::kQ4_1G128),
                         [](const ::testing::TestParamInfo<DType>& info) {
                           return std::string(dtype_name(info.param));
                         });

}  // namespace
}  // namespace llmopt::kernels

namespace llmopt::kernels {
namespace {

// matmul_multi (one input, several weights, one hand-off) gives every output exactly what matmul_bias
// gives it alone: mixed block and float types, with and without bias, on both sides of the
// single-thread threshold, on every ISA; and it falls back to separate products when the row lengths
// differ.
TEST(KernelsMatmulMulti, SameBitsAsSeparateProducts) {
  test::IsaGuard guard;
  ThreadPool pool(2);
  std::mt19937 rng(11);
  const int64_t k = 256;
  const std::vector<std::pair<DType, int64_t>> shapes = {
      {DType::kQ4_K, 200}, {DType::kQ6_K, 72}, {DType::kQ8_0, 133}, {DType::kF16, 64}};
  std::vector<Weights> ws(shapes.size());
  std::vector<std::vector<float>> bias(shapes.size());
  for (size_t j = 0; j < shapes.size(); ++j) {
    random_weights(shapes[j].first, shapes[j].second, k, rng, &ws[j]);
    bias[j].resize(static_cast<size_t>(shapes[j].second));
    for (auto& b : bias[j]) b = std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
  }
  for (Isa isa : test::supported_isas()) {
    set_isa(isa);
    for (int64_t m : {1, 3, 17}) {  // m = 1: below the threshold of one product, not of all four
      std::vector<float> x(static_cast<size_t>(m * k));
      for (auto& v : x) v = std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
      std::vector<std::vector<float>> want(shapes.size()), got(shapes.size());
      std::vector<MatmulJob> jobs;
      for (size_t j = 0; j < shapes.size(); ++j) {
        want[j].assign(static_cast<size_t>(m * shapes[j].second), 0.0f);
        got[j].assign(want[j].size(), -1.0f);
        const float* b = j % 2 == 0 ? bias[j].data() : nullptr;
        matmul_bias(ws[j].view, b, x.data(), m, want[j].data(), pool);
        jobs.push_back({&ws[j].view, b, got[j].data()});
      }
      matmul_multi(jobs, x.data(), m, pool);
      for (size_t j = 0; j < shapes.size(); ++j) {
        EXPECT_EQ(got[j], want[j]) << isa_name(isa) << " m=" << m << " " << dtype_name(shapes[j].first);
      }
    }
  }
  // Different row lengths: separate products, same results.
  Weights other;
  random_weights(DType::kQ8_0, 40, 2 * k, rng, &other);
  std::vector<float> x(static_cast<size_t>(2 * k), 0.5f), y1(72), y2(40), w1(72), w2(40);
  matmul_bias(ws[1].view, nullptr, x.data(), 1, w1.data(), pool);
  matmul_bias(other.view, nullptr, x.data(), 1, w2.data(), pool);
  const std::vector<MatmulJob> mixed = {{&ws[1].view, nullptr, y1.data()}, {&other.view, nullptr, y2.data()}};
  // Job 0 reads the first k values of x, job 1 all 2k: each row length is the weight's own.
  matmul_multi(mixed, x.data(), 1, pool);
  EXPECT_EQ(y1, w1);
  EXPECT_EQ(y2, w2);
}

// GELU as a product's epilogue (applied per thread to pieces of rows of any length) gives exactly
// matmul_bias followed by gelu_inplace over the whole output, on every ISA, with 1 and 3 threads, for
// a block type, a float type and an output width that is not a multiple of 4 or 8.
TEST(KernelsFusedProducts, GeluEpilogueEqualsSeparatePass) {
  test::IsaGuard guard;
  std::mt19937 rng(21);
  const int64_t k = 256;
  for (const auto& [type, n_out] :
       std::vector<std::pair<DType, int64_t>>{{DType::kQ8_0, 203}, {DType::kF32, 61}, {DType::kQ4_K, 1030}}) {
    Weights w;
    random_weights(type, n_out, k, rng, &w);
    std::vector<float> bias(static_cast<size_t>(n_out));
    for (auto& b : bias) b = std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
    for (Isa isa : test::supported_isas()) {
      set_isa(isa);
      for (int n_threads : {1, 3}) {
        ThreadPool pool(n_threads);
        for (int64_t m : {1, 2, 5, 9, 20}) {
          std::vector<float> x(static_cast<size_t>(m * k));
          for (auto& v : x) v = std::uniform_real_distribution<float>(-2.0f, 2.0f)(rng);
          std::vector<float> want(static_cast<size_t>(m * n_out)), got(want.size(), -1.0f);
          matmul_bias(w.view, bias.data(), x.data(), m, want.data(), pool);
          gelu_inplace(want.data(), m * n_out);
          const MatmulJob job[] = {{&w.view, bias.data(), got.data(), Epilogue::kGelu}};
          matmul_multi(job, x.data(), m, pool);
          ASSERT_EQ(got, want) << dtype_name(type) << " " << isa_name(isa) << " threads=" << n_threads
                               << " m=" << m;
        }
      }
    }
  }
}

// SwiGLU as the epilogue of the gate and up products (each thread's row range as soon as both are
// done) gives exactly the two products followed by swiglu over the whole output, on every ISA, with 1
// and 3 threads, below and above the parallel threshold, for equal and for different weight types and
// an output width that is not a multiple of 4 or 8. The up output keeps the up projection. A SwiGLU
// epilogue anywhere but on the second of two products of equal rows is a programming error (abort).
TEST(KernelsFusedProducts, SwiGluEpilogueEqualsSeparatePass) {
  test::IsaGuard guard;
  std::mt19937 rng(23);
  const int64_t k = 256;
  for (const auto& [tg, tu, n_out] : std::vector<std::tuple<DType, DType, int64_t>>{
           {DType::kQ8_0, DType::kQ8_0, 203}, {DType::kF32, DType::kF32, 61}, {DType::kQ4_K, DType::kQ6_K, 1030}}) {
    Weights wg, wu;
    random_weights(tg, n_out, k, rng, &wg);
    random_weights(tu, n_out, k, rng, &wu);
    for (Isa isa : test::supported_isas()) {
      set_isa(isa);
      for (int n_threads : {1, 3}) {
        ThreadPool pool(n_threads);
        for (int64_t m : {1, 5, 20}) {
          std::vector<float> x(static_cast<size_t>(m * k));
          for (auto& v : x) v = std::uniform_real_distribution<float>(-2.0f, 2.0f)(rng);
          const size_t n = static_cast<size_t>(m * n_out);
          std::vector<float> want_g(n), want_u(n), got_g(n, -1.0f), got_u(n, -1.0f);
          matmul_bias(wg.view, nullptr, x.data(), m, want_g.data(), pool);
          matmul_bias(wu.view, nullptr, x.data(), m, want_u.data(), pool);
          swiglu(want_g.data(), want_u.data(), want_g.data(), m * n_out);
          const MatmulJob jobs[] = {{&wg.view, nullptr, got_g.data()},
                                    {&wu.view, nullptr, got_u.data(), Epilogue::kSwiGluPrev}};
          matmul_multi(jobs, x.data(), m, pool);
          ASSERT_EQ(got_g, want_g) << dtype_name(tg) << "/" << dtype_name(tu) << " " << isa_name(isa)
                                   << " threads=" << n_threads << " m=" << m;
          ASSERT_EQ(got_u, want_u);
        }
      }
    }
  }
  Weights a, b;
  random_weights(DType::kQ8_0, 64, k, rng, &a);
  random_weights(DType::kQ8_0, 32, k, rng, &b);
  ThreadPool pool(1);
  std::vector<float> x(static_cast<size_t>(k), 0.5f), y1(64), y2(64);
  const MatmulJob first[] = {{&a.view, nullptr, y1.data(), Epilogue::kSwiGluPrev}, {&a.view, nullptr, y2.data()}};
  EXPECT_DEATH(matmul_multi(first, x.data(), 1, pool), "SwiGLU epilogue");
  const MatmulJob unequal[] = {{&a.view, nullptr, y1.data()}, {&b.view, nullptr, y2.data(), Epilogue::kSwiGluPrev}};
  EXPECT_DEATH(matmul_multi(unequal, x.data(), 1, pool), "SwiGLU epilogue");
}

// matmul_multi_normed equals normalizing the rows (rms_norm / layer_norm) and then matmul_multi, bit
// for bit: block types (normalized and quantized in one pass, h untouched) and F16 (h written), on
// both sides of the parallel-rows threshold, on every ISA.
TEST(KernelsFusedProducts, NormedProductsEqualNormThenProducts) {
  test::IsaGuard guard;
  std::mt19937 rng(22);
  const int64_t k = 512;
  std::vector<float> nw(static_cast<size_t>(k)), nb(static_cast<size_t>(k));
  for (auto& v : nw) v = std::uniform_real_distribution<float>(0.5f, 1.5f)(rng);
  for (auto& v : nb) v = std::uniform_real_distribution<float>(-0.5f, 0.5f)(rng);
  for (const std::vector<DType>& types :
       std::vector<std::vector<DType>>{{DType::kQ8_0, DType::kQ4_K}, {DType::kF16}}) {
    std::vector<Weights> ws(types.size());
    for (size_t j = 0; j < types.size(); ++j)
      random_weights(types[j], 37 + 8 * static_cast<int64_t>(j), k, rng, &ws[j]);
    for (Isa isa : test::supported_isas()) {
      set_isa(isa);
      ThreadPool pool(2);
      for (bool layer : {false, true}) {
        const RowNorm norm{layer, nw.data(), layer ? nb.data() : nullptr, 1e-5f};
        for (int64_t m : {1, 6, 70}) {  // 70 x 512 rows: normalized over the pool
          std::vector<float> x(static_cast<size_t>(m * k)), h(x.size()), h2(x.size(), 7.0f);
          for (auto& v : x) v = std::uniform_real_distribution<float>(-3.0f, 3.0f)(rng);
          for (int64_t i = 0; i < m; ++i) {
            if (layer) {
              layer_norm(x.data() + i * k, nw.data(), nb.data(), 1e-5f, h.data() + i * k, k);
            } else {
              rms_norm(x.data() + i * k, nw.data(), 1e-5f, h.data() + i * k, k);
            }
          }
          std::vector<std::vector<float>> want(types.size()), got(types.size());
          std::vector<MatmulJob> jw, jg;
          for (size_t j = 0; j < types.size(); ++j) {
            want[j].assign(static_cast<size_t>(m * ws[j].view.shape[0]), 0.0f);
            got[j].assign(want[j].size(), -1.0f);
            jw.push_back({&ws[j].view, nullptr, want[j].data()});
            jg.push_back({&ws[j].view, nullptr, got[j].data()});
          }
          matmul_multi(jw, h.data(), m, pool);
          matmul_multi_normed(jg, x.data(), m, norm, h2.data(), pool);
          for (size_t j = 0; j < types.size(); ++j) {
            ASSERT_EQ(got[j], want[j])
                << dtype_name(types[j]) << " " << isa_name(isa) << " layer=" << layer << " m=" << m;
          }
          const bool fused = isa != Isa::kRef && types[0] != DType::kF16;
          if (fused) {
            EXPECT_EQ(h2, std::vector<float>(h2.size(), 7.0f))
                << "fused: the normalized rows are not written";
          } else {
            EXPECT_EQ(h2, h) << "unfused: h holds the normalized rows";
          }
        }
      }
    }
  }
}

}  // namespace
}  // namespace llmopt::kernels
