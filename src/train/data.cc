// Token streams for training (see data.h).
#include "train/data.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/check.h"

namespace llmopt::train {

Result<std::vector<int32_t>> encode_text_file(const std::string& path, const Tokenizer& tok) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return error(path + ": " + std::strerror(errno));
  std::ostringstream ss;
  ss << in.rdbuf();
  const std::string text = ss.str();
  if (text.empty()) return error(path + ": the text file is empty");
  std::vector<int32_t> ids;
  size_t begin = 0;
  while (begin < text.size()) {
    size_t end = text.find('\n', begin);
    end = end == std::string::npos ? text.size() : end + 1;
    const std::vector<int32_t> part =
        tok.encode(std::string_view(text).substr(begin, end - begin), false, false);
    ids.insert(ids.end(), part.begin(), part.end());
    begin = end;
  }
  if (ids.empty()) return error(path + ": the text encodes to no tokens");
  return ids;
}

TokenSplit split_tokens(const std::vector<int32_t>& tokens, double heldout_frac) {
  LLMOPT_CHECK(heldout_frac >= 0.0 && heldout_frac < 1.0);
  const size_t n_held = static_cast<size_t>(static_cast<double>(tokens.size()) * heldout_frac);
  TokenSplit s;
  s.train.assign(tokens.begin(), tokens.end() - static_cast<std::ptrdiff_t>(n_held));
  s.heldout.assign(tokens.end() - static_cast<std::ptrdiff_t>(n_held), tokens.end());
  return s;
}

void sample_window_starts(size_t n_tokens, int64_t B, int64_t T, Rng& rng, size_t* starts) {
  LLMOPT_CHECK(static_cast<int64_t>(n_tokens) >= T + 1);
  const uint64_t n_starts = n_tokens - static_cast<size_t>(T);  // starts 0 .. n - T - 1
  for (int64_t b = 0; b < B; ++b) starts[b] = static_cast<size_t>(rng.below(n_starts));
}

void sample_windows(const std::vector<int32_t>& tokens, int64_t B, int64_t T, Rng& rng, int32_t* out) {
  std::vector<size_t> starts(static_cast<size_t>(B));
  sample_window_starts(tokens.size(), B, T, rng, starts.data());
  for (int64_t b = 0; b < B; ++b) {
    std::copy_n(tokens.begin() + static_cast<std::ptrdiff_t>(starts[b]), T + 1, out + b * (T + 1));
  }
}

int64_t count_eval_windows(size_t n_tokens, int64_t T, int64_t max_windows) {
  if (static_cast<int64_t>(n_tokens) < T + 1) return 0;
  return std::min<int64_t>(max_windows, (static_cast<int64_t>(n_tokens) - 1) / T);
}

void eval_window(const std::vector<int32_t>& tokens, int64_t T, int64_t index, int32_t* out) {
  const size_t start = static_cast<size_t>(index * T);
  LLMOPT_CHECK(start + static_cast<size_t>(T) < tokens.size());
  std::copy_n(tokens.begin() + static_cast<std::ptrdiff_t>(start), T + 1, out);
}

}  // namespace llmopt::train
