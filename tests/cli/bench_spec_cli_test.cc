// `llmopt bench-spec` as a user meets it: one JSON row per configuration with counts that hold
// whatever the machine speed (every row generates the same number of tokens; decode time is the
// end-to-end time less the prefill; the speed-up is decode tokens/s against plain decoding), and
// the markdown table's columns.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "cli/cli_test_util.h"
#include "test_util.h"

namespace llmopt {
namespace {

using test::kStory260K;

using test::run_command;

std::string prompts_file() {
  const std::string path = test::temp_dir() + "/prompts.txt";
  test::write_file(path, "Once upon a time, there was a little girl named Lily. She liked to play.\n"
                         "The cat sat on the mat. The cat sat on the mat. The cat\n");
  return path;
}

std::string cmd() {
  return test::llmopt_binary() + " bench-spec -m '" + test::data_path(kStory260K) + "' -t 2 --draft-ngram 2 -k 1,3 " +
         "--spec-adaptive -n 24 -f '" + prompts_file() + "'";
}

TEST(BenchSpecCliTest, JsonRowsAreConsistent) {
  LLMOPT_REQUIRE_DATA(kStory260K);
  auto r = run_command(cmd() + " --json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j.size(), 4u);  // plain, k=1, k=3, adaptive
  EXPECT_EQ(j[0]["config"], "plain");
  EXPECT_EQ(j[3]["adaptive"], true);
  const double base = j[0]["decode_tokens_per_s"].get<double>();
  ASSERT_GT(base, 0.0);
  for (const auto& row : j) {
    EXPECT_EQ(row["tokens"], 2 * 24) << row.dump();  // greedy; stories260K does not stop within 24 tokens here
    const double seconds = row["seconds"].get<double>(), decode = row["decode_seconds"].get<double>();
    EXPECT_GT(decode, 0.0);
    EXPECT_LT(decode, seconds);  // the prefill is left out
    EXPECT_NEAR(row["decode_tokens_per_s"].get<double>(), 2 * 23 / decode, 1e-6 * 2 * 23 / decode);
    EXPECT_NEAR(row["speedup"].get<double>(), row["decode_tokens_per_s"].get<double>() / base, 1e-9);
    EXPECT_NEAR(row["tokens_per_s"].get<double>(), 2 * 24 / seconds, 1e-6 * 2 * 24 / seconds);
  }
  EXPECT_EQ(j[0]["speedup"].get<double>(), 1.0);
  EXPECT_GT(j[1]["tokens_per_target_pass"].get<double>(), 1.0);  // the repeated sentence is found
}

TEST(BenchSpecCliTest, MarkdownTableColumns) {
  LLMOPT_REQUIRE_DATA(kStory260K);
  auto r = run_command(cmd());
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("| config | acceptance | tokens / target pass | tokens/s (with prompt) | decode tokens/s | "
                       "speed-up |"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("| plain | - | 1.00 |"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("| adaptive (k<=3) |"), std::string::npos) << r.out;
}

}  // namespace
}  // namespace llmopt
