// Test helpers: locating shared test data (skip when absent, fail under CI=true), temp dirs,
// running the llmopt binary and the NumPy reference.
#pragma once

#include <string>
#include <vector>

namespace llmopt::test {

// Absolute path of a file under the shared data folder (e.g. "models/stories260K/stories260K.bin").
std::string data_path(const std::string& rel);
// True if the file exists. If not: under CI=true records a test failure; otherwise nothing.
bool have_data(const std::string& rel);
// A fresh empty temporary directory (under $TMPDIR, else /tmp), removed when the test process exits
// (kept if LLMOPT_KEEP_TEST_TMP is set).
std::string temp_dir();
// True in the ASan/UBSan and TSan builds: their sweeps over shapes keep fewer cases (every code path
// still runs; the Release suite runs them all).
constexpr bool sanitized_build() { return LLMOPT_SANITIZED_BUILD != 0; }
// Path of the built llmopt binary, the source tree and the numpy-capable python (empty if none).
std::string llmopt_binary();
std::string source_dir();
std::string numpy_python();

struct CmdResult {
  int exit_code = -1;
  std::string out;  // stdout
  std::string err;  // stderr
};
// Runs a shell command line, capturing stdout and stderr.
CmdResult run_command(const std::string& cmdline);
std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& bytes);

}  // namespace llmopt::test

// Skips the test (or fails under CI=true) when a shared data file is missing.
#define LLMOPT_REQUIRE_DATA(rel)                                                            \
  do {                                                                                      \
    if (!::llmopt::test::have_data(rel)) GTEST_SKIP() << "test data not found: " << (rel) \
                                                      << " (set LLMOPT_DATA_DIR)";          \
  } while (0)

// Skips (or fails under CI=true) when no python3 with numpy is available.
#define LLMOPT_REQUIRE_NUMPY()                                                               \
  do {                                                                                       \
    if (::llmopt::test::numpy_python().empty()) GTEST_SKIP() << "python3 with numpy not found"; \
  } while (0)
