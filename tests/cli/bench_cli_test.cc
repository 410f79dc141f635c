// `llmopt bench` as a user meets it: the llama-bench-shaped table, JSON output, and one error line
// with exit code 1 for an impossible test size.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/cli_test_util.h"
#include "test_util.h"

namespace llmopt {
namespace {

using test::kStory260K;

using test::run_command;

std::string bench_cmd() { return test::llmopt_binary() + " bench -m '" + test::data_path(kStory260K) + "'"; }

TEST(BenchCliTest, MarkdownTableHasHeaderAndRows) {
  LLMOPT_REQUIRE_DATA(kStory260K);
  auto r = run_command(bench_cmd() + " -p 16,32 -n 8 -t 1,2 -r 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("| model"), std::string::npos) << r.out;
  for (const char* col : {"size", "params", "backend", "threads", "test", "t/s"}) {
    EXPECT_NE(r.out.find(col), std::string::npos) << col;
  }
  for (const char* test : {" pp16 |", " pp32 |", " tg8 |"}) {
    EXPECT_NE(r.out.find(test), std::string::npos) << test << "\n" << r.out;
  }
  EXPECT_NE(r.out.find("±"), std::string::npos);
  EXPECT_NE(r.out.find("peak RSS"), std::string::npos);
  EXPECT_NE(r.out.find("model file"), std::string::npos);
  // Header, separator, and 3 tests x 2 thread counts.
  size_t table_lines = 0;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) table_lines += !line.empty() && line[0] == '|';
  EXPECT_EQ(table_lines, 2u + 3u * 2u) << r.out;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 6) << r.err;  // one progress line per test
}

TEST(BenchCliTest, JsonOutputParses) {
  LLMOPT_REQUIRE_DATA(kStory260K);
  auto r = run_command(bench_cmd() + " -p 8 -n 0 -t 1 -r 1 -o json");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["results"].size(), 1u);
  EXPECT_EQ(j["results"][0]["test"], "pp8");
  EXPECT_GT(j["file_bytes"].get<uint64_t>(), 0u);
}

TEST(BenchCliTest, PromptLongerThanContextIsOneErrorLine) {
  LLMOPT_REQUIRE_DATA(kStory260K);
  auto r = run_command(bench_cmd() + " -p 100000 -n 4 -r 1");
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  EXPECT_NE(r.err.find("-p 100000"), std::string::npos) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
}

}  // namespace
}  // namespace llmopt
