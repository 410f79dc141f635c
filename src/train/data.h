// Training data: a text file encoded into one token stream, split into a training part and a
// held-out tail, random training windows and fixed held-out windows.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "core/status.h"
#include "tokenizer/tokenizer.h"
#include "train/rng.h"

namespace llmopt::train {

// Reads `path` and encodes it line by line (each line with its '\n', no BOS/EOS): a long text never
// reaches the tokenizer as one piece. Errors name the file ("TEXT: no such file", "... is empty").
Result<std::vector<int32_t>> encode_text_file(const std::string& path, const Tokenizer& tok);

struct TokenSplit {
  std::vector<int32_t> train;
  std::vector<int32_t> heldout;  // the last heldout_frac of the stream
};
// Splits off the last floor(n · heldout_frac) tokens (heldout_frac in [0, 1)).
TokenSplit split_tokens(const std::vector<int32_t>& tokens, double heldout_frac);

// Fills out [B][T+1] with B windows of T + 1 consecutive tokens whose starts are drawn uniformly
// from [0, n - T - 1] with rng (requires n >= T + 1).
void sample_windows(const std::vector<int32_t>& tokens, int64_t B, int64_t T, Rng& rng, int32_t* out);
// The starts alone (the same draws as sample_windows).
void sample_window_starts(size_t n_tokens, int64_t B, int64_t T, Rng& rng, size_t* starts);

// The held-out windows: consecutive, non-overlapping starts 0, T, 2T, ... (each T + 1 tokens; the
// last token of one window is the first of the next), at most max_windows of them.
int64_t count_eval_windows(size_t n_tokens, int64_t T, int64_t max_windows);
void eval_window(const std::vector<int32_t>& tokens, int64_t T, int64_t index, int32_t* out);

}  // namespace llmopt::train
