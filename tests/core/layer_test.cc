// The layering rule of docs/ARCHITECTURE.md, checked on the source tree: a layer may include only
// itself and the layers below it.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>

#include "test_util.h"

namespace {

TEST(LayerTest, IncludesPointOneWay) {
  const std::map<std::string, std::set<std::string>> allowed = {
      {"core", {"core"}},
      {"kernels", {"core", "kernels"}},
      {"formats", {"core", "formats"}},
      {"tokenizer", {"core", "tokenizer"}},
      {"quant", {"core", "kernels", "quant"}},
      {"model", {"core", "kernels", "formats", "tokenizer", "quant", "model"}},
      {"runtime", {"core", "kernels", "formats", "tokenizer", "quant", "model", "runtime"}},
      {"train", {"core", "kernels", "formats", "tokenizer", "quant", "model", "train"}},
      {"report", {"core", "report"}},
      {"cli", {"core", "kernels", "formats", "tokenizer", "quant", "model", "runtime", "train", "report", "cli"}},
  };
  const std::filesystem::path src = std::filesystem::path(llmopt::test::source_dir()) / "src";
  const std::regex inc(R"re(^\s*#\s*include\s*"([a-z_]+)/)re");
  int files = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(src)) {
    if (!entry.is_regular_file()) continue;
    const std::string layer = std::filesystem::relative(entry.path(), src).begin()->string();
    auto it = allowed.find(layer);
    ASSERT_NE(it, allowed.end()) << "unknown layer folder: " << layer;
    std::ifstream in(entry.path());
    std::string line;
    ++files;
    while (std::getline(in, line)) {
      std::smatch m;
      if (std::regex_search(line, m, inc) && allowed.count(m[1].str())) {
        EXPECT_TRUE(it->second.count(m[1].str()))
            << entry.path().string() << " (" << layer << ") includes " << m[1].str() << ": " << line;
      }
    }
  }
  EXPECT_GT(files, 20);
}

}  // namespace
