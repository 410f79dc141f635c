// Helpers shared by the tests that run the llmopt binary (tests/cli).
#pragma once

#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "model/loader.h"
#include "test_util.h"

namespace llmopt::test {

inline const char* const kStory260K = "models/stories260K/stories260K.gguf";

inline std::string bin() { return llmopt_binary(); }
// s in single quotes, for a shell command line.
inline std::string q(const std::string& s) { return "'" + s + "'"; }

// Expects a failed run whose stderr is exactly one "error: ..." line containing every needle.
inline void expect_one_line_error(const CmdResult& r, const std::vector<std::string>& needles) {
  EXPECT_EQ(r.exit_code, 1) << r.err;
  ASSERT_FALSE(r.err.empty());
  EXPECT_EQ(r.err.rfind("error: ", 0), 0u) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
  for (const auto& n : needles) EXPECT_NE(r.err.find(n), std::string::npos) << "missing '" << n << "' in: " << r.err;
}

// Tensor name -> type of a model file (an empty map, and a failed expectation, if it does not open).
inline std::map<std::string, DType> types_of(const std::string& path) {
  std::map<std::string, DType> m;
  auto src = open_model_source(path);
  EXPECT_TRUE(src.ok()) << src.status().message();
  if (src.ok()) {
    for (const NamedTensor& t : (*src)->tensors()) m[t.name] = t.view.type;
  }
  return m;
}

}  // namespace llmopt::test
