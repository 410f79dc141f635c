// `llmopt quantize --type T [--pure]` against llama.cpp's own llama-quantize: for every file type
// llmopt offers, plain and --pure, on three inputs (synthesized llama-tiny and gpt2-tiny, and the real
// TinyStories-656K converted to F32), every output tensor has the type and the bytes llama-quantize
// wrote (goldens in tests/golden/llama_quantize, made by tools/gen_llama_quantize_goldens.py). This
// checks the tensor-type rules (the head and tied embeddings, the Q4_K_M / Q5_K_M mixes, tensors left
// unquantized, fallbacks for rows that do not fit) and the quantizers together, file by file.
#include <gtest/gtest.h>

#include <cctype>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "formats/weight_source.h"
#include "model/loader.h"
#include "cli/cli_test_util.h"
#include "test_util.h"

namespace llmopt {
namespace {

using test::q;

using test::run_command;

std::string fnv1a64(const uint8_t* p, size_t n) {
  uint64_t h = 0xCBF29CE484222325ull;
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 0x100000001B3ull;
  }
  char buf[17];
  std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(h));
  return buf;
}

// tensor name -> "type hash"
using TensorSums = std::map<std::string, std::string>;

// variant ("input", "Q4_0", "Q4_0+pure", ...) -> tensor sums, in file order of the variants.
struct Golden {
  std::vector<std::string> variants;
  std::map<std::string, TensorSums> sums;
};

Golden read_golden(const std::string& name) {
  Golden g;
  std::ifstream f(test::source_dir() + "/tests/golden/llama_quantize/" + name + ".txt");
  EXPECT_TRUE(f.good()) << "missing golden " << name;
  std::string line;
  while (std::getline(f, line)) {
    if (line.empty() || line[0] == '#') continue;
    std::istringstream ls(line);
    std::string variant, tensor, type, hash;
    ls >> variant >> tensor >> type >> hash;
    EXPECT_EQ(hash.size(), 16u) << "bad golden line: " << line;
    if (g.sums.find(variant) == g.sums.end()) g.variants.push_back(variant);
    g.sums[variant][tensor] = type + " " + hash;
  }
  return g;
}

TensorSums sums_of(const std::string& path) {
  TensorSums s;
  auto src = open_model_source(path);
  EXPECT_TRUE(src.ok()) << path << ": " << src.status().message();
  if (!src.ok()) return s;
  for (const NamedTensor& t : (*src)->tensors()) {
    std::string type = dtype_name(t.view.type);  // ggml's spelling ("q6_K"); the goldens are lower case
    for (auto& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    s[t.name] = type + " " + fnv1a64(t.view.data, t.view.nbytes);
  }
  return s;
}

// Makes the input with `make_input` (a command line ending in "-o"), checks it is the input the
// goldens were made from, then quantizes it with every variant and compares tensor by tensor.
void check_against_golden(const std::string& name, const std::string& make_input) {
  const Golden g = read_golden(name);
  ASSERT_GT(g.variants.size(), 1u);
  ASSERT_EQ(g.variants[0], "input");
  const std::string dir = test::temp_dir();
  const std::string in = dir + "/" + name + ".gguf";
  auto r = run_command(make_input + " " + q(in));
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(sums_of(in), g.sums.at("input"))
      << "the " << name << " input made by llmopt is not the one the goldens were made from (synth or convert "
      << "changed?): regenerate them with tools/gen_llama_quantize_goldens.py";
  int checked = 0;
  for (size_t v = 1; v < g.variants.size(); ++v) {
    const std::string& variant = g.variants[v];
    const bool pure = variant.size() > 5 && variant.compare(variant.size() - 5, 5, "+pure") == 0;
    std::string type = pure ? variant.substr(0, variant.size() - 5) : variant;
    for (auto& c : type) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    const std::string out = dir + "/out.gguf";
    auto qr = run_command(test::llmopt_binary() + " quantize " + q(in) + " " + q(out) + " --type " + type +
                          (pure ? " --pure" : "") + " -t 2");
    ASSERT_EQ(qr.exit_code, 0) << variant << ": " << qr.err;
    const TensorSums got = sums_of(out);
    const TensorSums& want = g.sums.at(variant);
    EXPECT_EQ(got.size(), want.size()) << variant;
    for (const auto& [tensor, sum] : want) {
      auto it = got.find(tensor);
      if (it == got.end()) {
        ADD_FAILURE() << name << " " << variant << ": " << tensor << " missing";
        continue;
      }
      EXPECT_EQ(it->second, sum) << name << " " << variant << ": " << tensor
                                 << " (type and FNV-1a of the bytes; llama-quantize's on the right)";
    }
    ++checked;
  }
  EXPECT_EQ(checked, 20) << "10 file types, plain and --pure";
}

TEST(QuantizeGoldenTest, LlamaTinyMatchesLlamaQuantize) {
  check_against_golden("llama-tiny", test::llmopt_binary() + " synth --preset llama-tiny -o");
}

TEST(QuantizeGoldenTest, Gpt2TinyMatchesLlamaQuantize) {
  check_against_golden("gpt2-tiny", test::llmopt_binary() + " synth --preset gpt2-tiny -o");
}

TEST(QuantizeGoldenTest, TinyStoriesMatchesLlamaQuantize) {
  const char* kDir = "models/tinystories-656k/model.safetensors";
  if (!test::have_data(kDir)) GTEST_SKIP() << "shared test data not found: " << test::data_path(kDir);
  const std::string dir = test::data_path("models/tinystories-656k");
  check_against_golden("tinystories", test::llmopt_binary() + " convert " + q(dir) + " --outtype f32 -o");
}

}  // namespace
}  // namespace llmopt
