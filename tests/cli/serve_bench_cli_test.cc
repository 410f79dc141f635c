// `llmopt serve-bench` as a user meets it: the --compare table and JSON, the numbers that must hold
// whatever the machine speed (token counts, KV utilization of paged vs contiguous, prefix hits), and
// one error line with exit code 1 for bad options and workloads.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/cli_test_util.h"
#include "test_util.h"

namespace llmopt {
namespace {

using test::kStory260K;

using test::run_command;

std::string serve_cmd() {
  std::string cmd = test::llmopt_binary();
  cmd += " serve-bench -m '";
  cmd += test::data_path(kStory260K);
  cmd += "' -t 2";
  return cmd;
}

TEST(ServeBenchCliTest, CompareJsonHasEveryModeAndConsistentCounts) {
  LLMOPT_REQUIRE_DATA(kStory260K);
  auto r = run_command(
      serve_cmd() +
      " -n 12 --prompt-len 20:60 --output-len 10,50,100,20 --shared-prefix 32 -c 256 --compare -o json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 4u);
  EXPECT_EQ(j[0]["mode"], "continuous + paged");
  EXPECT_EQ(j[1]["mode"], "continuous + paged, no prefix cache");
  EXPECT_EQ(j[2]["mode"], "static + contiguous");
  EXPECT_EQ(j[3]["mode"], "one at a time");
  for (const auto& row : j) {
    EXPECT_EQ(row["requests"], 12);
    EXPECT_EQ(row["output_tokens"], 3 * (10 + 50 + 100 + 20));  // ignore_eos: exact lengths
    EXPECT_EQ(row["ttft_s"]["n"], 12);
    EXPECT_GT(row["output_tokens_per_s"].get<double>(), 0.0);
    EXPECT_LE(row["ttft_s"]["p50"].get<double>(), row["ttft_s"]["p99"].get<double>());
    EXPECT_GT(row["kv_utilization"].get<double>(), 0.0);
    EXPECT_LE(row["kv_utilization"].get<double>(), 1.0);
  }
  // Paged KV holds real tokens in most of what it reserves; contiguous reserves whole contexts.
  EXPECT_GT(j[0]["kv_utilization"].get<double>(), 0.7);
  EXPECT_LT(j[2]["kv_utilization"].get<double>(), 0.5);
  // The shared prefix is served from the cache to the requests admitted after the first step.
  EXPECT_GT(j[0]["prefix_hit_rate"].get<double>(), 0.1);
  EXPECT_EQ(j[1]["prefix_hit_rate"].get<double>(), 0.0);
}

TEST(ServeBenchCliTest, MarkdownTableAndRatios) {
  LLMOPT_REQUIRE_DATA(kStory260K);
  auto r = run_command(serve_cmd() + " -n 4 --prompt-len 8 --output-len 8 -c 64 --compare");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("| mode | req/s | out tok/s"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| static + contiguous |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("continuous + paged vs one at a time:"), std::string::npos) << r.out;
}

TEST(ServeBenchCliTest, RoundsAlternateTheModesAndReportPerRoundRatios) {
  LLMOPT_REQUIRE_DATA(kStory260K);
  auto r = run_command(serve_cmd() + " -n 4 --prompt-len 8 --output-len 8 -c 64 --compare --rounds 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("(each mode's median-throughput round of 2)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("continuous + paged vs static + contiguous:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("(medians of 2 rounds; throughput per round:"), std::string::npos) << r.out;
  // Round-robin: the second round of the first mode starts after the first round of the last one.
  const size_t one_1 = r.err.find("running: one at a time (round 1)");
  const size_t cont_2 = r.err.find("running: continuous + paged (round 2)");
  ASSERT_NE(one_1, std::string::npos) << r.err;
  ASSERT_NE(cont_2, std::string::npos) << r.err;
  EXPECT_LT(one_1, cont_2);
}

TEST(ServeBenchCliTest, WorkloadFileAndPoissonArrivals) {
  LLMOPT_REQUIRE_DATA(kStory260K);
  const std::string f = test::temp_dir() + "/w.txt";
  test::write_file(f, "# prompt output\n16 4\n\n8 12  # comment\n");
  auto r = run_command(serve_cmd() + " --workload " + f + " --rate 50 -c 64 -o json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 1u);
  EXPECT_EQ(j[0]["requests"], 2);
  EXPECT_EQ(j[0]["output_tokens"], 16);
  EXPECT_EQ(j[0]["prompt_tokens"], 16 + 8 + 2);  // + BOS each
}

TEST(ServeBenchCliTest, BadInputGivesOneErrorLine) {
  LLMOPT_REQUIRE_DATA(kStory260K);
  const std::string bad_file = test::temp_dir() + "/bad.txt";
  test::write_file(bad_file, "16 4\n8\n");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"--kv-mem lots", "not a size"},
      {"--kv-mem 12Q", "unknown unit"},
      {"--prompt-len 50:10", "empty"},
      {"--output-len 0", "positive"},
      {"--prompt-len 300 -c 256", "more than the context"},
      {"--batching sometimes", "not continuous or static"},
      {"--kv pages", "not paged or contiguous"},
      {"--workload " + bad_file, "bad.txt:2: expected two numbers"},
      {"--workload /nonexistent/w.txt", "cannot open"},
      {"--kv-tokens 16 -c 64 --prompt-len 8 --output-len 8", "less than one full context"},
      {"--max-batch-tokens 0", "must be positive"},
      {"-n 0", "must be positive"},
      {"--compare --rounds 0", "--rounds"},
  };
  for (const auto& [args, want] : cases) {
    auto r = run_command(serve_cmd() + " " + args);
    EXPECT_EQ(r.exit_code, 1) << args << "\n" << r.err;
    EXPECT_NE(r.err.find("error: "), std::string::npos) << args << "\n" << r.err;
    EXPECT_NE(r.err.find(want), std::string::npos) << args << "\n" << r.err;
  }
}

}  // namespace
}  // namespace llmopt
