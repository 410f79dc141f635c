// Test helpers (see test_util.h).
#include "test_util.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <vector>

namespace llmopt::test {

namespace {
bool in_ci() {
  const char* ci = std::getenv("CI");
  return ci != nullptr && std::string(ci) == "true";
}
bool file_exists(const std::string& p) {
  struct stat st {};
  return stat(p.c_str(), &st) == 0;
}
}  // namespace

std::string data_path(const std::string& rel) {
  const char* env = std::getenv("LLMOPT_DATA_DIR");
  std::string base = env != nullptr ? env : LLMOPT_DATA_DIR;
  return base + "/" + rel;
}

bool have_data(const std::string& rel) {
  if (file_exists(data_path(rel))) return true;
  if (in_ci()) ADD_FAILURE() << "CI=true but test data is missing: " << data_path(rel);
  return false;
}

namespace {
// The directories this process made, removed when it exits (unless LLMOPT_KEEP_TEST_TMP is set, to
// look at a failing test's files). A forked child (a death test) leaves its parent's alone.
class TempDirs {
 public:
  void add(const std::string& dir) {
    std::lock_guard<std::mutex> lock(mu_);
    dirs_.push_back(dir);
  }
  ~TempDirs() {
    if (getpid() != owner_ || std::getenv("LLMOPT_KEEP_TEST_TMP") != nullptr) return;
    for (const std::string& d : dirs_) {
      std::error_code ec;
      std::filesystem::remove_all(d, ec);
    }
  }

 private:
  std::mutex mu_;
  std::vector<std::string> dirs_;
  pid_t owner_ = getpid();
};
TempDirs& temp_dirs() {
  static TempDirs dirs;
  return dirs;
}
}  // namespace

std::string temp_dir() {
  std::error_code ec;
  std::filesystem::path base = std::filesystem::temp_directory_path(ec);
  if (ec) base = "/tmp";
  std::string tmpl = (base / "llmopt-test-XXXXXX").string();
  char* p = mkdtemp(tmpl.data());
  if (p == nullptr) {
    ADD_FAILURE() << "mkdtemp failed for " << tmpl;
    return tmpl;
  }
  temp_dirs().add(tmpl);
  return tmpl;
}

std::string llmopt_binary() { return LLMOPT_BINARY; }
std::string source_dir() { return LLMOPT_SOURCE_DIR; }

std::string numpy_python() {
  static std::string cached = [] {
    std::string py = LLMOPT_NUMPY_PYTHON;
    if (py.empty()) py = "python3";
    CmdResult r = run_command(py + " -c 'import numpy' 2>/dev/null");
    if (r.exit_code == 0) return py;
    if (in_ci()) ADD_FAILURE() << "CI=true but python3 with numpy is missing";
    return std::string();
  }();
  return cached;
}

CmdResult run_command(const std::string& cmdline) {
  CmdResult r;
  std::string dir = temp_dir();
  std::string out = dir + "/stdout", err = dir + "/stderr";
  std::string full = "(" + cmdline + ") >" + out + " 2>" + err + " </dev/null";
  int status = std::system(full.c_str());
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = read_file(out);
  r.err = read_file(err);
  std::error_code ec;
  std::filesystem::remove_all(dir, ec);
  return r;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary);
  out << bytes;
}

}  // namespace llmopt::test
