// `llmopt quantize` and `llmopt eval` as a user meets them: the per-tensor progress and summary, the
// Q4_K_M types on a synthesized llama-tiny, --keep, refusing an already quantized input, the eval
// table and JSON columns, and one error line with exit code 1 for bad flags.
#include <gtest/gtest.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>

#include "model/loader.h"
#include "cli/cli_test_util.h"
#include "test_util.h"

namespace llmopt {
namespace {

using test::bin;
using test::expect_one_line_error;
using test::kStory260K;
using test::q;
using test::types_of;

using test::run_command;

const char* kText = "text/tinystories-valid-first1000.txt";

// llama-tiny (2 layers, n_embd 64, n_ff 160, tied head) synthesized in F32 into `dir`.
std::string synth_tiny(const std::string& dir, const std::string& outtype = "f32") {
  const std::string path = dir + "/tiny-" + outtype + ".gguf";
  auto r = run_command(bin() + " synth --preset llama-tiny --outtype " + outtype + " -o " + q(path));
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return path;
}

TEST(QuantizeCliTest, Q4KMOnLlamaTinyFollowsTheRulesAndFallbacks) {
  const std::string dir = test::temp_dir();
  const std::string in = synth_tiny(dir);
  auto r = run_command(bin() + " quantize " + q(in) + " " + q(dir + "/out.gguf") + " --type q4_k_m -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_TRUE(r.out.empty()) << r.out;
  // Rows of 64 and 160 do not fit Q4_K's 256: Q4_K falls back to Q5_0 and Q6_K to Q8_0.
  // 2 layers: use_more_bits is true for layer 1 only (i >= 7*2/8 = 1), so blk.1's attn_v and
  // ffn_down are Q6_K -> Q8_0; the tied token_embd is the head: Q8_0 (64 % 256 != 0).
  auto types = types_of(dir + "/out.gguf");
  ASSERT_EQ(types.size(), 2u + 2u * 9u);
  for (const auto& [name, type] : types) {
    DType want = DType::kQ5_0;
    if (name.find("norm") != std::string::npos) want = DType::kF32;
    if (name == "token_embd.weight" || name == "blk.1.attn_v.weight" || name == "blk.1.ffn_down.weight") {
      want = DType::kQ8_0;
    }
    EXPECT_EQ(type, want) << name;
  }
  EXPECT_NE(r.err.find("[1/20] token_embd.weight q8_0\n"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("] blk.0.attn_q.weight q5_0\n"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("] blk.1.ffn_down.weight q8_0\n"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("size: "), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("bits per weight: 32.00 -> "), std::string::npos) << r.err;
  auto src = open_model_source(dir + "/out.gguf");
  ASSERT_TRUE(src.ok());
  EXPECT_EQ((*src)->metadata().get_int("general.file_type"), 15);
  // The result runs.
  auto g = run_command(bin() + " generate -m " + q(dir + "/out.gguf") + " -p 'ab' -n 4 --temp 0");
  EXPECT_EQ(g.exit_code, 0) << g.err;
}

TEST(QuantizeCliTest, KeepWritesMatchingMatricesAsF16) {
  const std::string dir = test::temp_dir();
  const std::string in = synth_tiny(dir);
  auto r = run_command(bin() + " quantize " + q(in) + " " + q(dir + "/out.gguf") +
                       " --type q8_0 --keep 'attn_(q|k)\\.'");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const auto& [name, type] : types_of(dir + "/out.gguf")) {
    DType want = DType::kQ8_0;
    if (name.find("norm") != std::string::npos) want = DType::kF32;
    if (name.find("attn_q.") != std::string::npos || name.find("attn_k.") != std::string::npos) want = DType::kF16;
    EXPECT_EQ(type, want) << name;
  }
  auto src = open_model_source(dir + "/out.gguf");
  ASSERT_TRUE(src.ok());
  EXPECT_EQ((*src)->metadata().get_int("general.file_type"), 7);
}

TEST(QuantizeCliTest, AlreadyQuantizedInputIsRefused) {
  const std::string dir = test::temp_dir();
  const std::string in = synth_tiny(dir, "q8_0");
  auto r = run_command(bin() + " quantize " + q(in) + " " + q(dir + "/out.gguf") + " --type q4_0");
  expect_one_line_error(r, {in + " is already quantized (q8_0); quantize from an F32/F16/BF16 model"});
}

TEST(QuantizeCliTest, BadFlagsAreOneErrorLine) {
  const std::string dir = test::temp_dir();
  expect_one_line_error(run_command(bin() + " quantize in.gguf " + q(dir + "/o.gguf") + " --type q9_9"),
                        {"unknown type 'q9_9'", "q4_k_m"});
  expect_one_line_error(
      run_command(bin() + " quantize " + q(dir + "/missing.gguf") + " " + q(dir + "/o.gguf") + " --type q4_0"),
      {"missing.gguf"});
  const std::string in = synth_tiny(dir);
  expect_one_line_error(run_command(bin() + " quantize " + q(in) + " " + q(dir + "/o.gguf") + " --type q4_0 --keep '('"),
                        {"--keep"});
  expect_one_line_error(run_command(bin() + " quantize " + q(in) + " " + q(in) + " --type q4_0"), {"is the input"});
  expect_one_line_error(run_command(bin() + " eval -m " + q(in) + " -f " + q(dir + "/missing.txt")), {"missing.txt"});
}

TEST(QuantizeCliTest, HelpOfBothCommands) {
  for (const char* sub : {"quantize", "eval"}) {
    auto r = run_command(bin() + " " + sub + " --help");
    EXPECT_EQ(r.exit_code, 0) << sub;
    EXPECT_NE(r.out.find("Usage"), std::string::npos) << sub;
  }
}

TEST(EvalCliTest, TableHasOneRowPerModelAndAllColumns) {
  LLMOPT_REQUIRE_DATA(kStory260K);
  LLMOPT_REQUIRE_DATA(kText);
  const std::string dir = test::temp_dir();
  const std::string base = test::data_path(kStory260K);
  auto c = run_command(bin() + " quantize " + q(base) + " " + q(dir + "/q8.gguf") + " --type q8_0");
  ASSERT_EQ(c.exit_code, 0) << c.err;
  auto r = run_command(bin() + " eval -m " + q(base) + " -m " + q(dir + "/q8.gguf") + " -f " +
                       q(test::data_path(kText)) + " -c 64 --chunks 2 -t 2");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  for (const char* col : {"| model", "size", "ratio", "bpw", "PPL", "Δppl", "KLD", "same top-1", "pp128 t/s", "tg32 t/s"}) {
    EXPECT_NE(r.out.find(col), std::string::npos) << col << "\n" << r.out;
  }
  size_t table_lines = 0;
  std::istringstream lines(r.out);
  for (std::string line; std::getline(lines, line);) table_lines += !line.empty() && line[0] == '|';
  EXPECT_EQ(table_lines, 2u + 2u) << r.out;
  EXPECT_NE(r.out.find("| 0.000000 ± 0.000000 |"), std::string::npos) << r.out;  // the base against itself
  EXPECT_NE(r.out.find("+0.000% ± 0.000"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("100.00%"), std::string::npos) << r.out;
  EXPECT_NE(r.err.find("[2/2] chunks"), std::string::npos) << r.err;
}

TEST(EvalCliTest, JsonArrayWithoutSpeed) {
  LLMOPT_REQUIRE_DATA(kStory260K);
  LLMOPT_REQUIRE_DATA(kText);
  const std::string base = test::data_path(kStory260K);
  auto r = run_command(bin() + " eval -m " + q(base) + " -m " + q(base) + " -f " + q(test::data_path(kText)) +
                       " -c 64 --chunks 2 --json --no-speed");
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const auto j = nlohmann::json::parse(r.out);
  ASSERT_TRUE(j.is_array());
  ASSERT_EQ(j.size(), 2u);
  for (const auto& row : j) {
    for (const char* key : {"model", "file_bytes", "ratio", "bpw", "ppl", "dppl_pct", "kld", "same_top1_pct",
                            "dppl_pct_stderr", "kld_stderr", "same_top1_stderr", "n_positions", "pp_tps", "tg_tps"}) {
      EXPECT_TRUE(row.contains(key)) << key;
    }
    EXPECT_EQ(row["kld"].get<double>(), 0.0);
    EXPECT_EQ(row["same_top1_pct"].get<double>(), 100.0);
    EXPECT_EQ(row["n_positions"].get<int64_t>(), 2 * 31);
    EXPECT_TRUE(row["pp_tps"].is_null());
    EXPECT_EQ(row["ratio"].get<double>(), 1.0);
  }
  EXPECT_EQ(r.err.find("speed"), std::string::npos) << r.err;
}

}  // namespace
}  // namespace llmopt
