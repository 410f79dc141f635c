// The reference quantizers (f32 -> Q8_0, Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K) checked byte for
// byte against golden rows made by independent implementations (tools/gen_quant_goldens.py: gguf-py's
// NumPy quantizers, cross-checked against llama.cpp's compiled quantize_row_*_ref; llama.cpp alone for
// the K-quants), plus round-trip error bounds through the (separately verified) dequantizers.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "kernels/kernels.h"
#include "test_util.h"

namespace llmopt::kernels {
namespace {

struct QuantGolden {
  DType type = DType::kF32;
  std::vector<float> src;
  std::string want;  // the quantized row
};

// Reads tests/golden/kernels/quant_<name>.bin (the "LLKG" format of tools/gen_kernel_goldens.py).
bool load_quant_golden(const std::string& name, QuantGolden* g) {
  const std::string path = ::llmopt::test::source_dir() + "/tests/golden/kernels/quant_" + name + ".bin";
  const std::string bytes = ::llmopt::test::read_file(path);
  uint32_t hdr[6];
  if (bytes.size() < 4 + sizeof(hdr) || bytes.compare(0, 4, "LLKG") != 0) {
    ADD_FAILURE() << "missing or malformed golden file " << path;
    return false;
  }
  std::memcpy(hdr, bytes.data() + 4, sizeof(hdr));
  const size_t body = 4 + sizeof(hdr);
  if (hdr[0] != 1 || hdr[1] != 1 || hdr[4] != size_t{hdr[3]} * 4 ||
      bytes.size() != body + size_t{hdr[4]} + hdr[5]) {
    ADD_FAILURE() << "bad header or size in " << path;
    return false;
  }
  g->type = static_cast<DType>(hdr[2]);
  g->src.resize(hdr[3]);
  std::memcpy(g->src.data(), bytes.data() + body, hdr[4]);
  g->want = bytes.substr(body + hdr[4], hdr[5]);
  return true;
}

class KernelsQuantizeGolden : public ::testing::TestWithParam<std::string> {};

TEST_P(KernelsQuantizeGolden, BitExactWithLlamaCppReference) {
  QuantGolden g;
  ASSERT_TRUE(load_quant_golden(GetParam(), &g));
  ASSERT_EQ(dtype_name(g.type), GetParam() == "q4_k"   ? std::string("q4_K")
                                : GetParam() == "q5_k" ? std::string("q5_K")
                                : GetParam() == "q6_k" ? std::string("q6_K")
                                                       : GetParam());
  ASSERT_TRUE(can_quantize(g.type));
  const auto n = static_cast<int64_t>(g.src.size());
  ASSERT_EQ(dtype_row_bytes(g.type, n).value_or(0), g.want.size());

  // Whole row, into a destination at an odd address (rows of a file buffer need not be aligned).
  std::string got(g.want.size() + 1, '\xAA');
  quantize_row(g.type, g.src.data(), got.data() + 1, n);
  const size_t tsz = dtype_info(g.type).type_size;
  for (size_t i = 0; i < g.want.size(); ++i) {
    ASSERT_EQ(static_cast<uint8_t>(got[i + 1]), static_cast<uint8_t>(g.want[i]))
        << GetParam() << " byte " << i << " (block " << i / tsz << ", offset " << i % tsz << ")";
  }
  // Block by block gives the same bytes as the whole row.
  const int64_t bs = dtype_info(g.type).block_size;
  std::string one(tsz, '\0');
  for (int64_t b = 0; b < n / bs; ++b) {
    quantize_row(g.type, g.src.data() + b * bs, one.data(), bs);
    ASSERT_EQ(one, g.want.substr(static_cast<size_t>(b) * tsz, tsz)) << GetParam() << " block " << b;
  }
}

INSTANTIATE_TEST_SUITE_P(Kernels, KernelsQuantizeGolden,
                         ::testing::Values("q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k", "q5_k", "q6_k"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

struct Bound {
  DType type;
  double max_rel_rms;  // RMS error / RMS of x over a Gaussian row
};

// dequantize(quantize(x)) stays close to x; all-zero rows come back as zeros.
TEST(KernelsQuantizeRoundTrip, ErrorWithinBound) {
  const Bound bounds[] = {{DType::kQ8_0, 0.006}, {DType::kQ4_0, 0.12}, {DType::kQ4_1, 0.10},
                          {DType::kQ5_0, 0.06},  {DType::kQ5_1, 0.05}, {DType::kQ4_K, 0.10},
                          {DType::kQ5_K, 0.05},  {DType::kQ6_K, 0.025}};
  const int64_t n = 4096;
  std::mt19937 rng(7);
  std::normal_distribution<float> dist(0.0f, 0.05f);
  std::vector<float> x(n), back(n);
  for (auto& v : x) v = dist(rng);
  double ss = 0;
  for (float v : x) ss += double{v} * v;
  const double rms_x = std::sqrt(ss / n);
  for (const Bound& b : bounds) {
    std::vector<uint8_t> q(dtype_row_bytes(b.type, n).value());
    quantize_row(b.type, x.data(), q.data(), n);
    dequantize_row(b.type, q.data(), back.data(), n);
    double se = 0;
    for (int64_t i = 0; i < n; ++i) se += (double{back[i]} - x[i]) * (double{back[i]} - x[i]);
    const double rel = std::sqrt(se / n) / rms_x;
    EXPECT_LT(rel, b.max_rel_rms) << dtype_name(b.type);
    EXPECT_GT(rel, 0.0) << dtype_name(b.type);

    std::vector<float> zeros(256, 0.0f), zback(256, 1.0f);
    std::vector<uint8_t> zq(dtype_row_bytes(b.type, 256).value());
    quantize_row(b.type, zeros.data(), zq.data(), 256);
    dequantize_row(b.type, zq.data(), zback.data(), 256);
    for (float v : zback) ASSERT_EQ(v, 0.0f) << dtype_name(b.type);
  }
}

}  // namespace
}  // namespace llmopt::kernels

namespace llmopt::kernels {
namespace {

// The extension type q4_1_g128 from its definition (docs/FORMATS.md): per 128 elements d = fp16((max -
// min) / 15), m = fp16(min), q = min(15, trunc((x - min) / ((max - min) / 15) + 0.5)), value q * d + m.
TEST(KernelsQ4_1G128, QuantizeAndDequantizeFollowTheDefinition) {
  std::mt19937 rng(5);
  std::normal_distribution<float> g(0.0f, 1.0f);
  const int64_t n = 3 * 128;
  std::vector<float> x(static_cast<size_t>(n));
  for (auto& v : x) v = g(rng);
  std::fill(x.begin() + 128, x.begin() + 256, 0.25f);  // a constant group: d = 0, every value = m
  ASSERT_EQ(dtype_row_bytes(DType::kQ4_1G128, n), std::optional<size_t>(3 * 68));
  std::vector<uint8_t> q(3 * 68);
  quantize_row(DType::kQ4_1G128, x.data(), q.data(), n);
  std::vector<float> y(static_cast<size_t>(n));
  dequantize_row(DType::kQ4_1G128, q.data(), y.data(), n);
  for (int64_t b = 0; b < 3; ++b) {
    const float* xb = x.data() + b * 128;
    float lo = xb[0], hi = xb[0];
    for (int j = 1; j < 128; ++j) {
      lo = std::min(lo, xb[j]);
      hi = std::max(hi, xb[j]);
    }
    const float d = (hi - lo) / 15.0f;
    const float dh = fp16_to_fp32(fp32_to_fp16(d)), mh = fp16_to_fp32(fp32_to_fp16(lo));
    for (int j = 0; j < 128; ++j) {
      const int code = d != 0.0f ? std::min(15, static_cast<int>((xb[j] - lo) * (1.0f / d) + 0.5f)) : 0;
      ASSERT_EQ(y[b * 128 + j], static_cast<float>(code) * dh + mh) << "block " << b << " element " << j;
    }
  }
}

}  // namespace
}  // namespace llmopt::kernels
