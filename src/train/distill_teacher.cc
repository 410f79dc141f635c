// Teacher forcing: a target model's top-k next-token distributions over a token stream
// (see distill_data.h).
#include <algorithm>
#include <numeric>

#include "model/kv_store.h"
#include "model/model.h"
#include "train/distill_data.h"

namespace llmopt::train {

Result<DistillSet> score_with_teacher(const Model& teacher, const std::vector<int32_t>& tokens, int32_t window,
                                      int32_t k, ThreadPool& pool,
                                      const std::function<void(size_t, size_t)>& progress) {
  const ModelConfig& cfg = teacher.config();
  if (window < 2) return error("teacher window must be at least 2 tokens");
  if (k < 2 || k > cfg.n_vocab) return error("top-k must be in [2, vocabulary size]");
  if (tokens.size() < 2) return error("need at least 2 tokens to score");
  for (int32_t t : tokens) {
    if (t < 0 || t >= cfg.n_vocab) return error("token id " + std::to_string(t) + " outside the teacher's vocabulary");
  }
  constexpr int32_t kBlock = 16;
  const int32_t n_blocks = (window + kBlock - 1) / kBlock;
  KvStore kv = KvStore::for_model(cfg, n_blocks, kBlock);
  std::vector<int32_t> table(static_cast<size_t>(n_blocks));
  std::iota(table.begin(), table.end(), 0);
  DistillSet s;
  s.k = k;
  s.n_vocab = cfg.n_vocab;
  s.tokens = tokens;
  s.ids.assign(tokens.size() * static_cast<size_t>(k), -1);
  s.probs.assign(tokens.size() * static_cast<size_t>(k), 0.0f);
  ForwardOutput out;
  const size_t n_windows = (tokens.size() - 1 + static_cast<size_t>(window) - 1) / static_cast<size_t>(window);
  for (size_t w = 0; w < n_windows; ++w) {
    const size_t begin = w * static_cast<size_t>(window);
    const size_t len = std::min<size_t>(static_cast<size_t>(window), tokens.size() - 1 - begin);
    SeqInput in;
    in.tokens = std::span<const int32_t>(tokens.data() + begin, len);
    in.pos0 = 0;
    in.block_table = table;
    in.logits = LogitsMode::kAll;
    teacher.forward(std::span<const SeqInput>(&in, 1), kv, out, pool);
    for (size_t j = 0; j < len; ++j) {
      const size_t row = begin + j;
      top_k_softmax(out.logits.data() + j * static_cast<size_t>(cfg.n_vocab), cfg.n_vocab, k,
                    s.ids.data() + row * static_cast<size_t>(k), s.probs.data() + row * static_cast<size_t>(k));
    }
    if (progress) progress(w + 1, n_windows);
  }
  return s;
}

}  // namespace llmopt::train
