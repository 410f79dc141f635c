// Row conversions checked against golden files made by an independent implementation (gguf-py's
// NumPy dequantizers, NumPy float16, bf16 round-to-nearest-even): see tools/gen_kernel_goldens.py.
// Every formula here is exact in f32 (one rounding per operation, in GGML's order), so results
// must be bit-equal.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "kernels/kernels.h"
#include "test_util.h"

namespace llmopt::kernels {
namespace {

struct Golden {
  uint32_t kind = 0;  // 0 = dequantize, 1 = quantize
  DType type = DType::kF32;
  int64_t n = 0;
  std::string src;
  std::string dst;
};

// Reads one golden file (format in tools/gen_kernel_goldens.py). Fails the test on a bad file.
bool load_golden(const std::string& name, Golden* g) {
  const std::string path = ::llmopt::test::source_dir() + "/tests/golden/kernels/" + name;
  const std::string bytes = ::llmopt::test::read_file(path);
  uint32_t hdr[6];
  if (bytes.size() < 4 + sizeof(hdr) || bytes.compare(0, 4, "LLKG") != 0) {
    ADD_FAILURE() << "missing or malformed golden file " << path;
    return false;
  }
  std::memcpy(hdr, bytes.data() + 4, sizeof(hdr));
  const size_t body = 4 + sizeof(hdr);
  if (hdr[0] != 1 || bytes.size() != body + size_t{hdr[4]} + hdr[5]) {
    ADD_FAILURE() << "bad header or size in " << path;
    return false;
  }
  g->kind = hdr[1];
  g->type = static_cast<DType>(hdr[2]);
  g->n = hdr[3];
  g->src = bytes.substr(body, hdr[4]);
  g->dst = bytes.substr(body + hdr[4], hdr[5]);
  return true;
}

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}

class KernelsGoldenDequant : public ::testing::TestWithParam<std::string> {};

TEST_P(KernelsGoldenDequant, BitEqualToReference) {
  Golden g;
  ASSERT_TRUE(load_golden("dequant_" + GetParam() + ".bin", &g));
  ASSERT_EQ(g.kind, 0u);
  ASSERT_TRUE(can_dequantize(g.type));
  ASSERT_EQ(dtype_row_bytes(g.type, g.n).value_or(0), g.src.size());
  ASSERT_EQ(g.dst.size(), static_cast<size_t>(g.n) * 4);
  std::vector<float> expected(static_cast<size_t>(g.n));
  std::memcpy(expected.data(), g.dst.data(), g.dst.size());

  // Whole row, and again from a source at an odd address (rows in a mapped file need not be aligned).
  std::vector<float> got(static_cast<size_t>(g.n));
  dequantize_row(g.type, g.src.data(), got.data(), g.n);
  std::string shifted = " " + g.src;
  std::vector<float> got_unaligned(static_cast<size_t>(g.n));
  dequantize_row(g.type, shifted.data() + 1, got_unaligned.data(), g.n);
  for (int64_t i = 0; i < g.n; ++i) {
    ASSERT_EQ(bits_of(got[i]), bits_of(expected[i]))
        << dtype_name(g.type) << " element " << i << ": got " << got[i] << " want " << expected[i];
    ASSERT_EQ(bits_of(got_unaligned[i]), bits_of(expected[i])) << "unaligned, element " << i;
  }

  // Block by block must give the same values as the whole row.
  const int64_t bs = dtype_info(g.type).block_size;
  const size_t tsz = dtype_info(g.type).type_size;
  std::vector<float> one(static_cast<size_t>(bs));
  for (int64_t b = 0; b < g.n / bs; ++b) {
    dequantize_row(g.type, g.src.data() + b * tsz, one.data(), bs);
    for (int64_t i = 0; i < bs; ++i) ASSERT_EQ(bits_of(one[i]), bits_of(expected[b * bs + i]));
  }
}

INSTANTIATE_TEST_SUITE_P(Kernels, KernelsGoldenDequant,
                         ::testing::Values("q8_0", "q4_0", "q4_1", "q5_0", "q5_1", "q4_k", "q5_k", "q6_k",
                                           "f16", "bf16"),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

// f32 -> f16 / bf16. NumPy keeps a signalling NaN's payload where llmopt (like GGML) makes it quiet,
// so NaN results are compared by NaN-ness and sign; everything else bit for bit.
void check_quantize_golden(const std::string& name, DType type) {
  Golden g;
  ASSERT_TRUE(load_golden(name, &g));
  ASSERT_EQ(g.kind, 1u);
  ASSERT_EQ(g.type, type);
  ASSERT_EQ(g.src.size(), static_cast<size_t>(g.n) * 4);
  ASSERT_EQ(g.dst.size(), static_cast<size_t>(g.n) * 2);
  std::vector<float> src(static_cast<size_t>(g.n));
  std::memcpy(src.data(), g.src.data(), g.src.size());
  std::vector<uint16_t> want(static_cast<size_t>(g.n)), got(static_cast<size_t>(g.n));
  std::memcpy(want.data(), g.dst.data(), g.dst.size());
  quantize_row(type, src.data(), got.data(), g.n);
  const uint16_t exp_mask = type == DType::kF16 ? 0x7c00 : 0x7f80;
  const uint16_t man_mask = type == DType::kF16 ? 0x03ff : 0x007f;
  int n_nan = 0;
  for (int64_t i = 0; i < g.n; ++i) {
    const uint16_t w = want[i];
    if ((w & exp_mask) == exp_mask && (w & man_mask) != 0) {
      ++n_nan;
      EXPECT_EQ(got[i] & exp_mask, exp_mask) << "NaN input " << i;
      EXPECT_NE(got[i] & man_mask, 0) << "NaN input " << i;
      EXPECT_EQ(got[i] & 0x8000, w & 0x8000) << "NaN sign " << i;
    } else {
      ASSERT_EQ(got[i], w) << name << " input " << i << " = " << src[i] << " (bits 0x" << std::hex
                           << bits_of(src[i]) << ")";
    }
  }
  EXPECT_GT(n_nan, 0);  // the file does cover NaNs
}

TEST(KernelsGoldenQuant, F16MatchesNumpy) { check_quantize_golden("quant_f16.bin", DType::kF16); }
TEST(KernelsGoldenQuant, Bf16MatchesRoundToNearestEven) {
  check_quantize_golden("quant_bf16.bin", DType::kBF16);
}

TEST(KernelsConvert, SupportedTypes) {
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0, DType::kQ4_1,
                  DType::kQ5_0, DType::kQ5_1, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
    EXPECT_TRUE(can_dequantize(t)) << dtype_name(t);
  }
  for (DType t : {DType::kQ8_1, DType::kQ2_K, DType::kQ3_K, DType::kQ8_K, DType::kI32, DType::kF64}) {
    EXPECT_FALSE(can_dequantize(t)) << dtype_name(t);
  }
  for (DType t : {DType::kF32, DType::kF16, DType::kBF16, DType::kQ8_0, DType::kQ4_0, DType::kQ4_1,
                  DType::kQ5_0, DType::kQ5_1, DType::kQ4_K, DType::kQ5_K, DType::kQ6_K}) {
    EXPECT_TRUE(can_quantize(t)) << dtype_name(t);
  }
  EXPECT_FALSE(can_quantize(DType::kQ8_1));
  EXPECT_FALSE(can_quantize(DType::kQ2_K));
  EXPECT_FALSE(can_quantize(DType::kQ8_K));
}

// Every half / bf16 bit pattern survives widening and narrowing unchanged (NaNs stay NaN).
void check_round_trip_all_16bit(DType type) {
  std::vector<uint16_t> all(65536), back(65536);
  for (uint32_t i = 0; i < 65536; ++i) all[i] = static_cast<uint16_t>(i);
  std::vector<float> wide(65536);
  dequantize_row(type, all.data(), wide.data(), 65536);
  quantize_row(type, wide.data(), back.data(), 65536);
  for (uint32_t i = 0; i < 65536; ++i) {
    if (std::isnan(wide[i])) {
      EXPECT_TRUE(std::isnan(type == DType::kF16 ? fp16_to_fp32(back[i]) : bf16_to_fp32(back[i]))) << i;
    } else {
      ASSERT_EQ(back[i], all[i]) << dtype_name(type) << " pattern " << i;
    }
  }
}

TEST(KernelsConvert, F16RoundTripsEveryPattern) { check_round_trip_all_16bit(DType::kF16); }
TEST(KernelsConvert, Bf16RoundTripsEveryPattern) { check_round_trip_all_16bit(DType::kBF16); }

// Narrowing arbitrary floats in the normal range loses at most half an ulp of the target format.
TEST(KernelsConvert, NarrowingErrorIsHalfUlp) {
  std::vector<float> x;
  for (int i = -2000; i <= 2000; ++i) x.push_back(static_cast<float>(i) * 0.01234567f + 1e-3f);
  const int64_t n = static_cast<int64_t>(x.size());
  std::vector<uint16_t> h(x.size());
  std::vector<float> back(x.size());
  for (DType t : {DType::kF16, DType::kBF16}) {
    const double half_ulp = t == DType::kF16 ? std::ldexp(1.0, -11) : std::ldexp(1.0, -8);
    quantize_row(t, x.data(), h.data(), n);
    dequantize_row(t, h.data(), back.data(), n);
    for (size_t i = 0; i < x.size(); ++i) {
      // Relative to the binade's lower bound, since |x| >= 2^floor(log2|x|).
      const double scale = std::ldexp(1.0, std::ilogb(x[i]));
      EXPECT_LE(std::fabs(static_cast<double>(back[i]) - x[i]), half_ulp * scale)
          << dtype_name(t) << " " << x[i];
    }
  }
}

TEST(KernelsConvert, F32RowsAreCopied) {
  const float src[5] = {1.5f, -0.0f, 3e38f, -7e-45f, 42.0f};
  float mid[5], out[5];
  quantize_row(DType::kF32, src, mid, 5);
  dequantize_row(DType::kF32, mid, out, 5);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(bits_of(out[i]), bits_of(src[i]));
}

}  // namespace
}  // namespace llmopt::kernels
