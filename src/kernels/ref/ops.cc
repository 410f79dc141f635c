// Reference vector and row ops: dot/axpy, RMS and layer norm, GELU, SwiGLU, softmax, add and RoPE.
// Loops are written so GCC vectorizes them at -O3 without -march flags (several independent partial
// sums instead of one serial accumulator); results do not depend on the thread count.
#include <cmath>
#include <limits>
#include <vector>

#include "core/check.h"
#include "kernels/ref/ref.h"

namespace llmopt::kernels::ref {

float dot_f32(const float* a, const float* b, int64_t n) {
  // NOTE: 16 partial sums in a fixed order: vectorizable, and the same value for the same inputs
  // wherever it is called from (matmul results are independent of how rows are split).
  constexpr int kLanes = 16;
  float acc[kLanes] = {};
  int64_t i = 0;
  for (; i + kLanes <= n; i += kLanes) {
    for (int j = 0; j < kLanes; ++j) acc[j] += a[i + j] * b[i + j];
  }
  float tail = 0.0f;
  for (; i < n; ++i) tail += a[i] * b[i];
  for (int w = kLanes / 2; w > 0; w /= 2) {
    for (int j = 0; j < w; ++j) acc[j] += acc[j + w];
  }
  return acc[0] + tail;
}

void axpy_f32(float a, const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += a * x[i];
}

void add_inplace(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];
}

void rms_norm(const float* x, const float* w, float eps, float* out, int64_t n) {
  LLMOPT_CHECK(n > 0);
  double sum = 0.0;  // like GGML, the statistics are accumulated in double
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  const float scale = 1.0f / std::sqrt(mean + eps);
  for (int64_t i = 0; i < n; ++i) out[i] = (x[i] * scale) * w[i];
}

void layer_norm(const float* x, const float* w, const float* b, float eps, float* out, int64_t n) {
  LLMOPT_CHECK(n > 0);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += x[i];
  const double mean = sum / static_cast<double>(n);
  double var = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    const double d = x[i] - mean;
    var += d * d;
  }
  var /= static_cast<double>(n);
  const float meanf = static_cast<float>(mean);
  const float scale = 1.0f / std::sqrt(static_cast<float>(var) + eps);
  if (b != nullptr) {
    for (int64_t i = 0; i < n; ++i) out[i] = (x[i] - meanf) * scale * w[i] + b[i];
  } else {
    for (int64_t i = 0; i < n; ++i) out[i] = (x[i] - meanf) * scale * w[i];
  }
}

void gelu_inplace(float* x, int64_t n) {
  constexpr float kSqrt2OverPi = 0.79788456080286535588f;
  constexpr float kCoef = 0.044715f;
  for (int64_t i = 0; i < n; ++i) {
    const float v = x[i];
    x[i] = 0.5f * v * (1.0f + std::tanh(kSqrt2OverPi * v * (1.0f + kCoef * v * v)));
  }
}

void swiglu(const float* gate, const float* up, float* out, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    out[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void softmax_inplace(float* x, int64_t n) {
  if (n <= 0) return;
  float mx = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) mx = std::fmax(mx, x[i]);
  if (mx == -std::numeric_limits<float>::infinity()) {
    // NOTE: every value masked out: no probability mass anywhere rather than NaNs.
    for (int64_t i = 0; i < n; ++i) x[i] = 0.0f;
    return;
  }
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - mx);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

namespace {

// cos/sin of theta_i = pos * base^(-2i/n_rot), i < n_rot/2. Every head of a token and every layer
// use the same table, and a batch (prefill, a verify pass, several sequences) cycles through a few
// positions, so each thread keeps the tables of its last kRopeSlots positions, one slot per pos modulo
// kRopeSlots (recomputing them took 1-2% of a speculative decoding run: a pow and a sincos per pair).
struct RopeTable {
  int64_t pos = -1;
  int64_t n_rot = -1;
  float base = 0.0f;
  std::vector<float> cos_theta;
  std::vector<float> sin_theta;
};
constexpr int64_t kRopeSlots = 64;

const RopeTable& rope_table(int64_t n_rot, int64_t pos, float base) {
  thread_local std::vector<RopeTable> slots(kRopeSlots);
  RopeTable& t = slots[static_cast<size_t>(pos % kRopeSlots)];
  if (t.pos == pos && t.n_rot == n_rot && t.base == base) return t;
  const int64_t half = n_rot / 2;
  t.cos_theta.resize(static_cast<size_t>(half));
  t.sin_theta.resize(static_cast<size_t>(half));
  for (int64_t i = 0; i < half; ++i) {
    // NOTE: theta is computed in double and rounded once, so it is exact to float precision even
    // at large positions (llama.cpp builds it by repeated float multiplication, which drifts by a
    // few ulps of the angle).
    const double theta =
        static_cast<double>(pos) *
        std::pow(static_cast<double>(base), -2.0 * static_cast<double>(i) / static_cast<double>(n_rot));
    t.cos_theta[static_cast<size_t>(i)] = static_cast<float>(std::cos(theta));
    t.sin_theta[static_cast<size_t>(i)] = static_cast<float>(std::sin(theta));
  }
  t.pos = pos;
  t.n_rot = n_rot;
  t.base = base;
  return t;
}

}  // namespace

void rope_inplace(float* x, int64_t head_dim, int64_t n_rot, int64_t pos, float base, RopeLayout layout) {
  LLMOPT_CHECK(n_rot >= 0 && n_rot <= head_dim && n_rot % 2 == 0 && pos >= 0);
  if (n_rot == 0) return;
  const RopeTable& t = rope_table(n_rot, pos, base);
  const int64_t half = n_rot / 2;
  // Pair i = (i0, i1) is rotated by theta_i: (x0, x1) -> (x0 cos - x1 sin, x0 sin + x1 cos).
  const int64_t stride = layout == RopeLayout::kAdjacent ? 2 : 1;
  const int64_t offset = layout == RopeLayout::kAdjacent ? 1 : half;
  for (int64_t i = 0; i < half; ++i) {
    float* p0 = x + i * stride;
    float* p1 = p0 + offset;
    const float c = t.cos_theta[static_cast<size_t>(i)];
    const float s = t.sin_theta[static_cast<size_t>(i)];
    const float x0 = *p0, x1 = *p1;
    *p0 = x0 * c - x1 * s;
    *p1 = x0 * s + x1 * c;
  }
}

}  // namespace llmopt::kernels::ref
