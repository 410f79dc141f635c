// Affine quantization: spec checks, per-group parameters, round-to-nearest and dequantization.
#include "quant/affine.h"

#include <algorithm>
#include <cmath>
#include <string>

namespace llmopt::quant {

const char* granularity_name(AffineSpec::Granularity g) {
  switch (g) {
    case AffineSpec::kTensor: return "tensor";
    case AffineSpec::kChannel: return "channel";
    case AffineSpec::kGroup: return "group";
  }
  return "?";
}

Status validate_spec(const AffineSpec& spec, int64_t rows, int64_t cols) {
  if (spec.bits != 8 && spec.bits != 4 && spec.bits != 3) {
    return error("unsupported bit width " + std::to_string(spec.bits) + " (expected 8, 4 or 3)");
  }
  if (spec.granularity != AffineSpec::kTensor && spec.granularity != AffineSpec::kChannel &&
      spec.granularity != AffineSpec::kGroup) {
    return error("unknown granularity " + std::to_string(static_cast<int>(spec.granularity)));
  }
  if (rows <= 0 || cols <= 0) {
    return error("empty weight matrix [" + std::to_string(rows) + " x " + std::to_string(cols) + "]");
  }
  if (spec.granularity == AffineSpec::kGroup) {
    if (spec.group_size <= 0) {
      return error("group size " + std::to_string(spec.group_size) + " must be positive");
    }
    if (cols % spec.group_size != 0) {
      return error("group size " + std::to_string(spec.group_size) + " does not divide the row length " +
                   std::to_string(cols));
    }
  }
  return ok_status();
}

Status check_finite(const float* w, int64_t rows, int64_t cols, const char* what) {
  for (int64_t i = 0; i < rows * cols; ++i) {
    if (!std::isfinite(w[i])) {
      return error(std::string(what) + " contain " + (std::isnan(w[i]) ? "NaN" : "Inf") + " at row " +
                   std::to_string(i / cols) + ", column " + std::to_string(i % cols));
    }
  }
  return ok_status();
}

int32_t code_min(int bits, bool symmetric) { return symmetric ? -((1 << (bits - 1)) - 1) : 0; }
int32_t code_max(int bits, bool symmetric) { return symmetric ? (1 << (bits - 1)) - 1 : (1 << bits) - 1; }

int64_t group_count(const AffineSpec& spec, int64_t rows, int64_t cols) {
  switch (spec.granularity) {
    case AffineSpec::kTensor: return 1;
    case AffineSpec::kChannel: return rows;
    case AffineSpec::kGroup: return rows * (cols / spec.group_size);
  }
  return 0;
}

int64_t group_length(const AffineSpec& spec, int64_t rows, int64_t cols) {
  switch (spec.granularity) {
    case AffineSpec::kTensor: return rows * cols;
    case AffineSpec::kChannel: return cols;
    case AffineSpec::kGroup: return spec.group_size;
  }
  return 0;
}

GroupParams group_params(const float* w, int64_t n, int bits, bool symmetric, float clip_ratio) {
  GroupParams p;
  if (symmetric) {
    float m = 0.0f;
    for (int64_t i = 0; i < n; ++i) m = std::max(m, std::fabs(w[i]));
    m *= clip_ratio;
    p.scale = m / static_cast<float>(code_max(bits, true));
    return p;
  }
  float lo = 0.0f, hi = 0.0f;  // the range always holds 0
  for (int64_t i = 0; i < n; ++i) {
    lo = std::min(lo, w[i]);
    hi = std::max(hi, w[i]);
  }
  lo *= clip_ratio;
  hi *= clip_ratio;
  const int32_t qmax = code_max(bits, false);
  p.scale = (hi - lo) / static_cast<float>(qmax);
  if (p.scale > 0.0f) {
    const float z = std::nearbyint(-lo / p.scale);
    p.zero = static_cast<int32_t>(std::clamp(z, 0.0f, static_cast<float>(qmax)));
  }
  return p;
}

int32_t quantize_value(float w, GroupParams p, int bits, bool symmetric) {
  if (!(p.scale > 0.0f)) return p.zero;
  const float lo = static_cast<float>(code_min(bits, symmetric));
  const float hi = static_cast<float>(code_max(bits, symmetric));
  const float q = std::nearbyint(w / p.scale) + static_cast<float>(p.zero);
  return static_cast<int32_t>(std::clamp(q, lo, hi));
}

GroupParams quantize_group(const float* w, int64_t n, int bits, bool symmetric, float clip_ratio, int16_t* codes,
                           float* deq) {
  const GroupParams p = group_params(w, n, bits, symmetric, clip_ratio);
  for (int64_t i = 0; i < n; ++i) {
    const int32_t q = quantize_value(w[i], p, bits, symmetric);
    codes[i] = static_cast<int16_t>(q);
    if (deq != nullptr) deq[i] = dequantize_value(q, p);
  }
  return p;
}

void quantize_column(const float* w, int64_t n, int64_t stride, const GroupParams* params, int bits,
                     bool symmetric, int16_t* codes, float* deq) {
  for (int64_t i = 0; i < n; ++i) {
    const int32_t q = quantize_value(w[i * stride], params[i], bits, symmetric);
    codes[i] = static_cast<int16_t>(q);
    if (deq != nullptr) deq[i] = dequantize_value(q, params[i]);
  }
}

std::vector<uint8_t> AffineTensor::pack() const {
  const int64_t n = static_cast<int64_t>(codes.size());
  std::vector<uint8_t> out;
  if (spec.bits == 4) {
    out.assign(static_cast<size_t>((n + 1) / 2), 0);
    for (int64_t i = 0; i < n; ++i) {
      const uint8_t nib = static_cast<uint8_t>(codes[i] & 0xF);
      out[i / 2] |= static_cast<uint8_t>((i % 2 == 0) ? nib : nib << 4);
    }
  } else {  // 8 bits, and 3 bits left one per byte
    out.resize(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>(codes[i] & 0xFF);
  }
  return out;
}

std::vector<int16_t> unpack_codes(const std::vector<uint8_t>& packed, int64_t n, int bits, bool symmetric) {
  std::vector<int16_t> codes(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    int32_t v;
    if (bits == 4) {
      v = (i % 2 == 0) ? (packed[i / 2] & 0xF) : (packed[i / 2] >> 4);
      if (symmetric && v >= 8) v -= 16;
    } else {
      v = packed[i];
      if (symmetric && v >= 128) v -= 256;
    }
    codes[i] = static_cast<int16_t>(v);
  }
  return codes;
}

namespace {

Result<AffineTensor> quantize_impl(const float* w, int64_t rows, int64_t cols, const AffineSpec& spec,
                                   const std::vector<float>* clip_ratios) {
  LLMOPT_RETURN_IF_ERROR(validate_spec(spec, rows, cols));
  LLMOPT_RETURN_IF_ERROR(check_finite(w, rows, cols));
  const int64_t groups = group_count(spec, rows, cols);
  const int64_t len = group_length(spec, rows, cols);
  if (clip_ratios != nullptr) {
    if (static_cast<int64_t>(clip_ratios->size()) != groups) {
      return error("expected " + std::to_string(groups) + " clipping ratios, got " +
                   std::to_string(clip_ratios->size()));
    }
    for (float r : *clip_ratios) {
      if (!(r > 0.0f && r <= 1.0f)) return error("clipping ratio " + std::to_string(r) + " not in (0, 1]");
    }
  }
  AffineTensor t;
  t.spec = spec;
  t.rows = rows;
  t.cols = cols;
  t.codes.resize(static_cast<size_t>(rows * cols));
  t.scales.resize(static_cast<size_t>(groups));
  t.zeros.resize(static_cast<size_t>(groups));
  for (int64_t g = 0; g < groups; ++g) {  // every group is a contiguous run of len values
    const float ratio = clip_ratios != nullptr ? (*clip_ratios)[g] : 1.0f;
    const GroupParams p =
        quantize_group(w + g * len, len, spec.bits, spec.symmetric, ratio, t.codes.data() + g * len, nullptr);
    t.scales[g] = p.scale;
    t.zeros[g] = p.zero;
  }
  return t;
}

}  // namespace

Result<AffineTensor> quantize_rtn(const float* w, int64_t rows, int64_t cols, const AffineSpec& spec) {
  return quantize_impl(w, rows, cols, spec, nullptr);
}

Result<AffineTensor> quantize_rtn_clipped(const float* w, int64_t rows, int64_t cols, const AffineSpec& spec,
                                          const std::vector<float>& clip_ratios) {
  return quantize_impl(w, rows, cols, spec, &clip_ratios);
}

void dequantize(const AffineTensor& t, float* out) {
  for (int64_t r = 0; r < t.rows; ++r) {
    for (int64_t c = 0; c < t.cols; ++c) {
      const int64_t i = r * t.cols + c;
      out[i] = dequantize_value(t.codes[i], t.params(group_of(t.spec, t.cols, r, c)));
    }
  }
}

std::vector<float> dequantize(const AffineTensor& t) {
  std::vector<float> out(static_cast<size_t>(t.rows * t.cols));
  dequantize(t, out.data());
  return out;
}

}  // namespace llmopt::quant
