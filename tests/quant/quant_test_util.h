// Synthetic data for the quant tests: heavy-tailed weights and LLM-like calibration activations
// (correlated columns, a few channels of large magnitude), all from fixed seeds.
#pragma once

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "quant/affine.h"
#include "quant/hessian.h"
#include "quant/metrics.h"

namespace llmopt::quant::testdata {

inline AffineSpec spec_of(int bits, AffineSpec::Granularity g, int group_size = 0, bool sym = false) {
  AffineSpec s;
  s.bits = bits;
  s.granularity = g;
  s.group_size = group_size;
  s.symmetric = sym;
  return s;
}

inline std::vector<float> gaussian(int64_t n, uint32_t seed, float stddev = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, stddev);
  std::vector<float> v(static_cast<size_t>(n));
  for (float& x : v) x = nd(rng);
  return v;
}

// Student-t (3 degrees of freedom) weights, scaled to about 0.02, plus `outliers` large values per row.
inline std::vector<float> heavy_tailed_weights(int64_t rows, int64_t cols, uint32_t seed, int outliers = 2) {
  std::mt19937 rng(seed);
  std::student_t_distribution<float> t(3.0f);
  std::uniform_int_distribution<int64_t> col(0, cols - 1);
  std::vector<float> w(static_cast<size_t>(rows * cols));
  for (float& x : w) x = 0.02f * t(rng);
  for (int64_t r = 0; r < rows; ++r) {
    // Rows differ in magnitude, like real output channels.
    const float row_scale = std::exp(0.5f * std::normal_distribution<float>(0.0f, 1.0f)(rng));
    for (int64_t c = 0; c < cols; ++c) w[r * cols + c] *= row_scale;
    // Outliers of both signs but unequal sizes (equal ones would put an asymmetric zero point on a tie).
    for (int k = 0; k < outliers; ++k) w[r * cols + col(rng)] = (k % 2 ? -0.27f : 0.3f) * row_scale;
  }
  return w;
}

// x [n][cols] = z · A + noise with z [n][rank] (correlated columns), per-channel magnitudes that vary
// log-normally, and `big` channels 30x larger than the rest (the outlier channels of real LLMs).
inline std::vector<float> llm_activations(int64_t n, int64_t cols, uint32_t seed, int big = 4) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const int64_t rank = std::max<int64_t>(4, cols / 8);
  std::vector<float> a(static_cast<size_t>(rank * cols));
  for (float& v : a) v = nd(rng) / std::sqrt(static_cast<float>(rank));
  std::vector<float> mag(static_cast<size_t>(cols));
  for (float& m : mag) m = std::exp(0.5f * nd(rng));
  for (int k = 0; k < big; ++k) mag[(k * 37 + 5) % cols] *= 30.0f;
  std::vector<float> x(static_cast<size_t>(n * cols));
  std::vector<float> z(static_cast<size_t>(rank));
  for (int64_t i = 0; i < n; ++i) {
    for (float& v : z) v = nd(rng);
    for (int64_t c = 0; c < cols; ++c) {
      float s = 0.3f * nd(rng);
      for (int64_t k = 0; k < rank; ++k) s += z[k] * a[k * cols + c];
      x[i * cols + c] = s * mag[c];
    }
  }
  return x;
}

// H of x [n][cols], added in two batches (exercising the incremental accumulation).
inline std::vector<float> hessian_of(const std::vector<float>& x, int64_t n, int64_t cols) {
  HessianAccumulator acc(cols);
  if (!acc.add(x.data(), n / 2).ok() || !acc.add(x.data() + (n / 2) * cols, n - n / 2).ok()) return {};
  auto h = acc.hessian();
  return h.ok() ? *h : std::vector<float>();
}

// ||x w^T - x deq(t)^T||^2.
inline double output_error(const std::vector<float>& x, int64_t n, const std::vector<float>& w,
                           const AffineTensor& t) {
  const std::vector<float> d = dequantize(t);
  return layer_output_error(x.data(), n, w.data(), d.data(), t.rows, t.cols);
}

}  // namespace llmopt::quant::testdata
