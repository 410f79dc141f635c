// W8A8 matmul of the extension type i8_ch (int8 weight rows with one f32 scale each) on every ISA this
// CPU has, against the arithmetic written out here: activations quantized per token
// (scale = max|x| / 127) or with a static scale (saturating at +-127), exact integer dot products in
// int64, y = sum * (w_scale * x_scale) + bias. Row lengths that are not multiples of 32, 1..17
// activation rows, 1 vs 3 threads; all ISAs bit-identical to each other.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <limits>
#include <cstring>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "kernels/isa_test_util.h"
#include "kernels/kernels.h"

namespace llmopt::kernels {
namespace {

using test::IsaGuard;

struct Case {
  int64_t n_out, k, m;
  float act_scale;  // 0: per token
};

// The expected product, from the definition.
std::vector<float> expected(const std::vector<int8_t>& w, const std::vector<float>& ws, const std::vector<float>& x,
                            const std::vector<float>& bias, const Case& c) {
  std::vector<float> y(static_cast<size_t>(c.m * c.n_out));
  for (int64_t i = 0; i < c.m; ++i) {
    const float* xi = x.data() + i * c.k;
    float s = c.act_scale;
    if (s == 0.0f) {
      float amax = 0.0f;
      for (int64_t j = 0; j < c.k; ++j) amax = std::max(amax, std::fabs(xi[j]));
      s = amax / 127.0f;
    }
    std::vector<int64_t> q(static_cast<size_t>(c.k), 0);
    if (s > 0.0f) {
      for (int64_t j = 0; j < c.k; ++j) {
        q[j] = static_cast<int64_t>(std::clamp(std::nearbyint(xi[j] / s), -127.0f, 127.0f));
      }
    }
    for (int64_t r = 0; r < c.n_out; ++r) {
      int64_t sum = 0;
      for (int64_t j = 0; j < c.k; ++j) sum += q[j] * w[r * c.k + j];
      y[i * c.n_out + r] = static_cast<float>(sum) * (ws[r] * s) + bias[r];
    }
  }
  return y;
}

TEST(KernelsI8Ch, MatchesTheDefinitionOnEveryIsa) {
  IsaGuard guard;
  std::mt19937 rng(7);
  // -128 too: no quantizer writes it, but a file may hold it, and every kernel must give its product.
  std::uniform_int_distribution<int> code(-128, 127);
  std::normal_distribution<float> g(0.0f, 1.0f);
  ThreadPool pool1(1), pool3(3);
  const std::vector<Case> cases = {{5, 1, 1, 0}, {7, 31, 3, 0}, {9, 32, 1, 0}, {13, 33, 9, 0},
                                   {8, 100, 17, 0}, {6, 172, 5, 0}, {40, 768, 2, 0}, {12, 96, 4, 0.01f},
                                   {600, 513, 3, 0}, {21, 70, 21, 0}, {9, 64, 8, 0.02f},
                                   // Whole groups of 16 weight rows with 5 or more activation rows (the AMX
                                   // tiles): row lengths of odd and even 64-code steps, with and without a
                                   // tail, activation tiles full and partial, rows split over 3 threads.
                                   {48, 200, 37, 0}, {64, 128, 16, 0.01f}, {32, 192, 9, 0}, {100, 513, 20, 0}};
  for (const Case& c : cases) {
    std::vector<int8_t> w(static_cast<size_t>(c.n_out * c.k));
    for (auto& v : w) v = static_cast<int8_t>(code(rng));
    std::vector<float> ws(static_cast<size_t>(c.n_out)), bias(static_cast<size_t>(c.n_out));
    for (auto& v : ws) v = std::fabs(g(rng)) * 0.01f;
    for (auto& v : bias) v = g(rng);
    std::vector<float> x(static_cast<size_t>(c.m * c.k));
    for (auto& v : x) v = g(rng);
    if (c.m > 1) std::fill(x.begin() + c.k, x.begin() + 2 * c.k, 0.0f);  // an all-zero row: scale 0
    TensorView tv;
    tv.type = DType::kI8Ch;
    tv.shape = {c.n_out, c.k};
    tv.data = reinterpret_cast<const uint8_t*>(w.data());
    tv.nbytes = w.size();
    tv.row_scale = ws.data();
    tv.act_scale = c.act_scale;
    const std::vector<float> want = expected(w, ws, x, bias, c);
    std::vector<float> first;
    for (Isa isa : test::supported_isas()) {
      set_isa(isa);
      for (ThreadPool* pool : {&pool1, &pool3}) {
        std::vector<float> y(want.size(), -1.0f);
        matmul_bias(tv, bias.data(), x.data(), c.m, y.data(), *pool);
        for (size_t j = 0; j < y.size(); ++j) {
          // Only the float products may round differently from the definition's order: 2 ulp.
          ASSERT_NEAR(y[j], want[j], 2e-6f * (std::fabs(want[j]) + 1.0f))
              << isa_name(isa) << " n_out " << c.n_out << " k " << c.k << " m " << c.m << " at " << j;
        }
        if (first.empty()) first = y;
        ASSERT_EQ(y, first) << isa_name(isa) << ": every ISA and thread count gives the same bits";
      }
    }
  }
}

TEST(KernelsI8Ch, ActivationCodesEqualTheReferenceOnEveryIsa) {
  IsaGuard guard;
  std::mt19937 rng(11);
  std::normal_distribution<float> g(0.0f, 3.0f);
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (int64_t n : {1, 7, 8, 31, 32, 33, 100, 768, 1001}) {
    for (int variant = 0; variant < 4; ++variant) {
      std::vector<float> x(static_cast<size_t>(n));
      for (auto& v : x) v = g(rng);
      // Exact halves of the scale (ties to even), a NaN, an infinity, a zero row.
      if (variant == 1) {
        x[0] = 127.0f;
        for (int64_t j = 1; j < n; ++j) x[j] = static_cast<float>(j % 5) - 2.5f;
      }
      if (variant == 2) x[static_cast<size_t>(n / 2)] = nan;
      if (variant == 3) std::fill(x.begin(), x.end(), 0.0f);
      for (float static_scale : {0.0f, 0.01f}) {
        std::vector<int8_t> want(static_cast<size_t>(n), 99);
        const float s_want = ref::quantize_act_i8(x.data(), n, static_scale, want.data());
        for (Isa isa : test::supported_isas()) {
          set_isa(isa);
          const IsaKernels* k = active_isa_kernels();
          if (k == nullptr) continue;
          std::vector<int8_t> got(static_cast<size_t>(n), 99);
          const float s_got = k->quantize_act_i8(x.data(), n, static_scale, got.data());
          ASSERT_EQ(std::memcmp(&s_got, &s_want, sizeof(float)), 0) << isa_name(isa) << " n " << n;
          ASSERT_EQ(got, want) << isa_name(isa) << " n " << n << " variant " << variant << " static " << static_scale;
        }
      }
      if (variant == 2) {  // also an infinity: every finite code becomes 0, the infinity 127
        x[0] = inf;
        std::vector<int8_t> want(static_cast<size_t>(n));
        ref::quantize_act_i8(x.data(), n, 0.0f, want.data());
        for (Isa isa : test::supported_isas()) {
          set_isa(isa);
          const IsaKernels* k = active_isa_kernels();
          if (k == nullptr) continue;
          std::vector<int8_t> got(static_cast<size_t>(n));
          k->quantize_act_i8(x.data(), n, 0.0f, got.data());
          ASSERT_EQ(got, want) << isa_name(isa) << " n " << n << " with an infinity";
        }
      }
    }
  }
}

TEST(KernelsI8Ch, StaticScaleSaturates) {
  // x = 10 with a static scale of 0.01 would be code 1000: it saturates to 127.
  const std::vector<int8_t> w = {1, -2};
  const std::vector<float> ws = {1.0f};
  TensorView tv;
  tv.type = DType::kI8Ch;
  tv.shape = {1, 2};
  tv.data = reinterpret_cast<const uint8_t*>(w.data());
  tv.nbytes = 2;
  tv.row_scale = ws.data();
  tv.act_scale = 0.01f;
  const std::vector<float> x = {10.0f, 0.5f};  // codes 127 and 50
  float y = 0.0f;
  ThreadPool pool(1);
  matmul(tv, x.data(), 1, &y, pool);
  EXPECT_FLOAT_EQ(y, static_cast<float>(127 - 100) * 0.01f);
}

TEST(KernelsI8Ch, IsNotDequantizableAlone) {
  // Its values need the companion scales, so the row-conversion paths refuse it.
  EXPECT_FALSE(can_dequantize(DType::kI8Ch));
  EXPECT_FALSE(can_quantize(DType::kI8Ch));
  EXPECT_EQ(dtype_from_name("i8_ch"), DType::kI8Ch);
}

}  // namespace
}  // namespace llmopt::kernels
