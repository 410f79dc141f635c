// Affine (uniform, integer) weight quantization: the schemes (bits, granularity, symmetric or not),
// round-to-nearest quantization and dequantization, and the per-group helpers GPTQ and AWQ build on.
//
// A weight matrix is row-major [rows = output features][cols = input features]. Weights are split into
// quantization groups that share one scale (and, asymmetric, one integer zero point):
//   kTensor: one group for the whole matrix;
//   kChannel: one group per row (per output channel);
//   kGroup: each row cut into runs of group_size consecutive input columns, so there are
//           rows * cols / group_size groups, numbered row-major (group g = row * (cols / group_size) + c / group_size).
// Every group is a contiguous range of the row-major matrix.
//
// Value of code q in a group with scale s and zero z: s * (q - z).
//   symmetric:  s = max|w| / (2^(bits-1) - 1), z = 0, q in [-(2^(bits-1)-1), 2^(bits-1)-1];
//   asymmetric: s = (max - min) / (2^bits - 1) with min <= 0 <= max (the range always holds 0, so 0 is
//               exact), z = round(-min / s) in [0, 2^bits - 1], q in [0, 2^bits - 1].
// q = clamp(round_half_even(w / s) + z). A group whose range is 0 (all zeros) gets s = 0 and codes z.
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"

namespace llmopt::quant {

struct AffineSpec {
  enum Granularity { kTensor, kChannel, kGroup };
  int bits = 4;                          // 8, 4 or 3
  Granularity granularity = kGroup;
  int group_size = 128;                  // kGroup only: input columns per group; must divide cols
  bool symmetric = false;
};

const char* granularity_name(AffineSpec::Granularity g);

// Ok if the spec is usable for a [rows][cols] matrix; otherwise an error naming the bad parameter.
Status validate_spec(const AffineSpec& spec, int64_t rows, int64_t cols);
// Ok if all rows * cols values are finite; otherwise an error naming the first bad element.
Status check_finite(const float* w, int64_t rows, int64_t cols, const char* what = "weights");

// Code range of a spec: [qmin, qmax].
int32_t code_min(int bits, bool symmetric);
int32_t code_max(int bits, bool symmetric);

// Number of groups, the number of consecutive elements per group, and the group of element (r, c).
int64_t group_count(const AffineSpec& spec, int64_t rows, int64_t cols);
int64_t group_length(const AffineSpec& spec, int64_t rows, int64_t cols);
inline int64_t group_of(const AffineSpec& spec, int64_t cols, int64_t r, int64_t c) {
  switch (spec.granularity) {
    case AffineSpec::kTensor: return 0;
    case AffineSpec::kChannel: return r;
    case AffineSpec::kGroup: return r * (cols / spec.group_size) + c / spec.group_size;
  }
  return 0;
}

// Scale and zero point of one group.
struct GroupParams {
  float scale = 0.0f;
  int32_t zero = 0;  // always 0 when symmetric
};

// Parameters of the n values at w, with the range shrunk by clip_ratio in (0, 1]: symmetric uses
// max|w| * ratio, asymmetric [min * ratio, max * ratio] (values outside are clamped when quantized).
// Used as is by RTN (ratio 1), by AWQ's clipping search and by GPTQ at the start of each group.
GroupParams group_params(const float* w, int64_t n, int bits, bool symmetric, float clip_ratio = 1.0f);

// One value: its code under (scale, zero), and a code's value.
int32_t quantize_value(float w, GroupParams p, int bits, bool symmetric);
inline float dequantize_value(int32_t q, GroupParams p) { return p.scale * static_cast<float>(q - p.zero); }

// Quantizes one group of n values with the given clipping ratio: returns its parameters and writes its
// codes (and, when deq != nullptr, their values). AWQ's clipping search tries ratios with it.
GroupParams quantize_group(const float* w, int64_t n, int bits, bool symmetric, float clip_ratio, int16_t* codes,
                           float* deq);

// One column (or any strided vector) with fixed per-element parameters, as GPTQ does one column at a
// time: for i < n, codes[i] = quantize_value(w[i * stride], params[i]) and deq[i] = its value
// (deq may be nullptr).
void quantize_column(const float* w, int64_t n, int64_t stride, const GroupParams* params, int bits,
                     bool symmetric, int16_t* codes, float* deq);

// A quantized matrix: unpacked codes (int16 so that 8-bit asymmetric codes 0..255 fit), one scale and
// one zero point per group (zeros are all 0 when symmetric).
struct AffineTensor {
  AffineSpec spec;
  int64_t rows = 0;
  int64_t cols = 0;
  std::vector<int16_t> codes;   // [rows * cols], row-major
  std::vector<float> scales;    // [group_count]
  std::vector<int32_t> zeros;   // [group_count]

  GroupParams params(int64_t group) const { return {scales[group], zeros[group]}; }
  // Packed codes: 8 bits one per byte (two's complement when symmetric); 4 bits two per byte, the
  // element with the lower index in the low nibble (4-bit two's complement when symmetric; an odd
  // count leaves the last high nibble 0); 3 bits stay one per byte.
  std::vector<uint8_t> pack() const;
};

// Inverse of AffineTensor::pack for the same spec and element count.
std::vector<int16_t> unpack_codes(const std::vector<uint8_t>& packed, int64_t n, int bits, bool symmetric);

// Round-to-nearest quantization of w [rows][cols].
Result<AffineTensor> quantize_rtn(const float* w, int64_t rows, int64_t cols, const AffineSpec& spec);
// Same with one clipping ratio per group (clip_ratios.size() == group_count), as chosen by AWQ.
Result<AffineTensor> quantize_rtn_clipped(const float* w, int64_t rows, int64_t cols, const AffineSpec& spec,
                                          const std::vector<float>& clip_ratios);
// out[rows * cols] = the values of t's codes.
void dequantize(const AffineTensor& t, float* out);
std::vector<float> dequantize(const AffineTensor& t);

}  // namespace llmopt::quant
