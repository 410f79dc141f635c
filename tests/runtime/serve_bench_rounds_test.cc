// serve-bench --rounds: the median round of a mode and the per-round ratios between modes, checked
// against values worked out by hand.
#include <gtest/gtest.h>

#include <vector>

#include "runtime/serve_bench.h"

namespace llmopt {
namespace {

ServeBenchResult result(double tokens_per_s, double ttft_mean) {
  ServeBenchResult r;
  r.seconds = 1.0;
  r.output_tokens = static_cast<int64_t>(tokens_per_s);
  r.ttft.mean = ttft_mean;
  return r;
}

TEST(ServeBenchRounds, MedianThroughputRoundIsTheMiddleOne) {
  const std::vector<ServeBenchResult> odd = {result(300, 1.0), result(100, 2.0), result(200, 3.0)};
  EXPECT_EQ(median_throughput_round(odd).output_tokens, 200);
  EXPECT_EQ(median_throughput_round(odd).ttft.mean, 3.0);  // the whole round, not a mix of rounds
  // An even count takes the lower middle round: a round that ran, not an average of two.
  const std::vector<ServeBenchResult> even = {result(400, 1.0), result(100, 1.0), result(300, 1.0), result(200, 1.0)};
  EXPECT_EQ(median_throughput_round(even).output_tokens, 200);
  EXPECT_EQ(median_throughput_round({result(50, 1.0)}).output_tokens, 50);
}

TEST(ServeBenchRounds, RatiosArePairedByRound) {
  // The machine slows down from round to round; within each round a is 1.5x, 1.6x, 1.4x faster.
  const std::vector<ServeBenchResult> a = {result(600, 1.0), result(480, 2.0), result(280, 4.0)};
  const std::vector<ServeBenchResult> b = {result(400, 3.0), result(300, 3.0), result(200, 6.0)};
  const RoundRatios r = round_ratios(a, b);
  ASSERT_EQ(r.throughput.size(), 3u);
  EXPECT_DOUBLE_EQ(r.throughput[0], 1.5);
  EXPECT_DOUBLE_EQ(r.throughput[1], 1.6);
  EXPECT_DOUBLE_EQ(r.throughput[2], 1.4);
  EXPECT_DOUBLE_EQ(r.median_throughput, 1.5);
  // Mean TTFT b / a per round: 3, 1.5, 1.5.
  EXPECT_DOUBLE_EQ(r.median_ttft, 1.5);
  // The ratio of the modes' medians would mix rounds: median(a) / median(b) = 480 / 300 = 1.6.
  const RoundRatios two = round_ratios({a[0], a[2]}, {b[0], b[2]});
  EXPECT_DOUBLE_EQ(two.median_throughput, (1.5 + 1.4) / 2);
}

}  // namespace
}  // namespace llmopt
