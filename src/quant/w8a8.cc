// W8A8 activation quantizers and the scalar int8 x int8 -> int32 GEMM reference.
#include "quant/w8a8.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace llmopt::quant {

namespace {

int8_t to_int8(float x, float scale) {
  if (!(scale > 0.0f)) return 0;
  return static_cast<int8_t>(std::clamp(std::nearbyint(x / scale), -127.0f, 127.0f));
}

Status check_shape(const float* x, int64_t n, int64_t cols) {
  if (n <= 0 || cols <= 0 || x == nullptr) {
    return error("empty activation matrix [" + std::to_string(n) + " x " + std::to_string(cols) + "]");
  }
  return check_finite(x, n, cols, "activations");
}

}  // namespace

Result<float> static_activation_scale(float calib_abs_max) {
  if (!(calib_abs_max > 0.0f) || !std::isfinite(calib_abs_max)) {
    return error("calibration activation max " + std::to_string(calib_abs_max) +
                 " must be finite and > 0 (empty calibration?)");
  }
  return calib_abs_max / 127.0f;
}

Result<Int8Activations> quantize_activation_int8_dynamic(const float* x, int64_t n, int64_t cols) {
  LLMOPT_RETURN_IF_ERROR(check_shape(x, n, cols));
  Int8Activations a;
  a.rows = n;
  a.cols = cols;
  a.q.resize(static_cast<size_t>(n * cols));
  a.scales.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    float m = 0.0f;
    for (int64_t k = 0; k < cols; ++k) m = std::max(m, std::fabs(x[i * cols + k]));
    a.scales[i] = m / 127.0f;
    for (int64_t k = 0; k < cols; ++k) a.q[i * cols + k] = to_int8(x[i * cols + k], a.scales[i]);
  }
  return a;
}

Result<Int8Activations> quantize_activation_int8_static(const float* x, int64_t n, int64_t cols, float scale) {
  LLMOPT_RETURN_IF_ERROR(check_shape(x, n, cols));
  if (!(scale > 0.0f) || !std::isfinite(scale)) {
    return error("static activation scale " + std::to_string(scale) + " must be finite and > 0");
  }
  Int8Activations a;
  a.rows = n;
  a.cols = cols;
  a.q.resize(static_cast<size_t>(n * cols));
  a.scales = {scale};
  for (int64_t i = 0; i < n * cols; ++i) a.q[i] = to_int8(x[i], scale);
  return a;
}

std::vector<float> dequantize_activations(const Int8Activations& a) {
  std::vector<float> out(a.q.size());
  for (int64_t i = 0; i < a.rows; ++i) {
    for (int64_t k = 0; k < a.cols; ++k) out[i * a.cols + k] = a.scale(i) * static_cast<float>(a.q[i * a.cols + k]);
  }
  return out;
}

Result<std::vector<float>> gemm_w8a8(const Int8Activations& a, const AffineTensor& w) {
  if (w.spec.bits != 8 || !w.spec.symmetric) return error("W8A8 GEMM needs 8-bit symmetric weights");
  if (w.spec.granularity == AffineSpec::kGroup) {
    return error("W8A8 GEMM needs per-tensor or per-channel weight scales, not groups");
  }
  if (w.cols != a.cols) {
    return error("W8A8 GEMM: weights have " + std::to_string(w.cols) + " input columns, activations " +
                 std::to_string(a.cols));
  }
  std::vector<float> y(static_cast<size_t>(a.rows * w.rows));
  for (int64_t i = 0; i < a.rows; ++i) {
    const int8_t* xi = a.q.data() + i * a.cols;
    for (int64_t r = 0; r < w.rows; ++r) {
      const int16_t* wr = w.codes.data() + r * w.cols;
      int32_t acc = 0;
      for (int64_t k = 0; k < a.cols; ++k) acc += static_cast<int32_t>(xi[k]) * static_cast<int32_t>(wr[k]);
      const float ws = w.scales[w.spec.granularity == AffineSpec::kChannel ? r : 0];
      y[i * w.rows + r] = a.scale(i) * ws * static_cast<float>(acc);
    }
  }
  return y;
}

}  // namespace llmopt::quant
