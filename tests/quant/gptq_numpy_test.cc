// GPTQ against an independent, unblocked float64 NumPy implementation of the paper's algorithm
// (tests/quant/gptq_ref.py), run through /usr/bin/python3 like the model tests' NumPy reference.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstring>
#include <string>

#include "quant/gptq.h"
#include "quant_test_util.h"
#include "test_util.h"

namespace llmopt::quant {
namespace {

using testdata::hessian_of;
using testdata::spec_of;

struct NumpyCase {
  const char* name;
  AffineSpec spec;
  bool act_order;
};

struct RefResult {
  std::vector<int32_t> codes;
  std::vector<double> deq;
};

RefResult numpy_gptq(const std::vector<float>& w, int64_t rows, int64_t cols, const std::vector<float>& h,
                     const AffineSpec& spec, const GptqOptions& opt) {
  const std::string dir = test::temp_dir();
  std::string in(reinterpret_cast<const char*>(w.data()), w.size() * sizeof(float));
  in.append(reinterpret_cast<const char*>(h.data()), h.size() * sizeof(float));
  test::write_file(dir + "/in.bin", in);
  char damp[32];
  std::snprintf(damp, sizeof(damp), "%.17g", opt.damp_percent);
  const test::CmdResult r = test::run_command(
      test::numpy_python() + " " + test::source_dir() + "/tests/quant/gptq_ref.py " + dir + "/in.bin " + dir +
      "/out.bin " + std::to_string(rows) + " " + std::to_string(cols) + " " + std::to_string(spec.bits) + " " +
      (spec.symmetric ? "1" : "0") + " " + granularity_name(spec.granularity) + " " +
      std::to_string(spec.group_size) + " " + damp + " " + (opt.act_order ? "1" : "0"));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  const std::string bytes = test::read_file(dir + "/out.bin");
  RefResult out;
  const size_t n = static_cast<size_t>(rows * cols);
  EXPECT_EQ(bytes.size(), n * (sizeof(int32_t) + sizeof(double)));
  if (bytes.size() != n * (sizeof(int32_t) + sizeof(double))) return out;
  out.codes.resize(n);
  out.deq.resize(n);
  std::memcpy(out.codes.data(), bytes.data(), n * sizeof(int32_t));
  std::memcpy(out.deq.data(), bytes.data() + n * sizeof(int32_t), n * sizeof(double));
  return out;
}

TEST(GptqNumpy, MatchesUnblockedFloat64Reference) {
  LLMOPT_REQUIRE_NUMPY();
  const int64_t rows = 8, cols = 64, n = 256;
  const auto w = testdata::heavy_tailed_weights(rows, cols, 21);
  auto x = testdata::llm_activations(n, cols, 22);
  for (int64_t s = 0; s < n; ++s) x[s * cols + 10] = 0.0f;  // one dead column
  const auto h = hessian_of(x, n, cols);
  const NumpyCase cases[] = {{"4bit_channel", spec_of(4, AffineSpec::kChannel, 0), false},
                        {"4bit_g32", spec_of(4, AffineSpec::kGroup, 32), false},
                        {"4bit_g32_sym", spec_of(4, AffineSpec::kGroup, 32, true), false},
                        {"3bit_tensor", spec_of(3, AffineSpec::kTensor, 0), false},
                        {"4bit_g32_act", spec_of(4, AffineSpec::kGroup, 32), true},
                        {"8bit_channel_act", spec_of(8, AffineSpec::kChannel, 0, true), true}};
  for (const NumpyCase& c : cases) {
    SCOPED_TRACE(c.name);
    GptqOptions opt;
    opt.act_order = c.act_order;
    opt.block_size = 20;  // the reference is unblocked; 20 puts group starts mid-block
    auto got = quantize_gptq(w.data(), rows, cols, h, c.spec, opt);
    ASSERT_TRUE(got.ok()) << got.status().message();
    const RefResult want = numpy_gptq(w, rows, cols, h, c.spec, opt);
    ASSERT_EQ(want.codes.size(), got->codes.size());
    const auto d = dequantize(*got);
    int64_t diff = 0;
    double max_dev = 0.0, w_max = 0.0;
    for (size_t i = 0; i < d.size(); ++i) {
      w_max = std::max(w_max, std::fabs(static_cast<double>(w[i])));
      if (got->codes[i] != want.codes[i]) {
        ++diff;
        EXPECT_LE(std::abs(got->codes[i] - want.codes[i]), 1) << "element " << i;
        continue;
      }
      max_dev = std::max(max_dev, std::fabs(d[i] - want.deq[i]));
    }
    std::printf("[ info     ] %-16s codes differing from NumPy: %lld of %zu; max |w_hat - ref| %.2e\n", c.name,
                static_cast<long long>(diff), d.size(), max_dev);
    EXPECT_LE(diff, static_cast<int64_t>(d.size() / 100));  // float32 vs float64 rounding ties only
    EXPECT_LE(max_dev, 1e-5 * w_max);
  }
}

// The comparison can fail: a GPTQ without error feedback (plain RTN) is far from the reference.
TEST(GptqNumpy, RtnDiffersFromReference) {
  LLMOPT_REQUIRE_NUMPY();
  const int64_t rows = 8, cols = 64, n = 256;
  const auto w = testdata::heavy_tailed_weights(rows, cols, 21);
  const auto x = testdata::llm_activations(n, cols, 22);
  const auto h = hessian_of(x, n, cols);
  const AffineSpec spec = spec_of(4, AffineSpec::kChannel, 0);
  auto rtn = quantize_rtn(w.data(), rows, cols, spec);
  ASSERT_TRUE(rtn.ok());
  const RefResult want = numpy_gptq(w, rows, cols, h, spec, GptqOptions{});
  ASSERT_EQ(want.codes.size(), rtn->codes.size());
  int64_t diff = 0;
  for (size_t i = 0; i < want.codes.size(); ++i) diff += rtn->codes[i] != want.codes[i];
  EXPECT_GT(diff, static_cast<int64_t>(want.codes.size() / 10));
}

}  // namespace
}  // namespace llmopt::quant
