// ModelDrafter, NgramDrafter, self-draft and the vocabulary check.
#include "runtime/spec/drafter.h"

#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>

#include "core/check.h"
#include "model/convert.h"
#include "model/loader.h"

namespace llmopt {

Status check_same_vocab(const Model& target, const Model& draft) {
  const int32_t nt = target.config().n_vocab, nd = draft.config().n_vocab;
  if (nt != nd) {
    return error("the draft's vocabulary has " + std::to_string(nd) + " tokens, the target's " + std::to_string(nt) +
                 "; a draft must share the target's tokenizer");
  }
  if (target.has_tokenizer() && draft.has_tokenizer()) {
    for (int32_t id = 0; id < nt; ++id) {
      if (target.tokenizer().token_to_piece(id) != draft.tokenizer().token_to_piece(id)) {
        return error("the draft's token " + std::to_string(id) + " differs from the target's; a draft must share the "
                     "target's tokenizer");
      }
    }
  }
  return ok_status();
}

ModelDrafter::ModelDrafter(std::shared_ptr<const Model> draft, int32_t n_ctx, uint64_t seed, ThreadPool& pool,
                           std::string label)
    : model_(std::move(draft)),
      n_ctx_(n_ctx),
      pool_(pool),
      label_(std::move(label)),
      kv_(KvStore::for_model(model_->config(), blocks_for_tokens(n_ctx, 16), 16)),
      blocks_(blocks_for_tokens(n_ctx, 16)),
      seq_(blocks_, 16),
      rng_(seed) {
  LLMOPT_CHECK(seq_.reserve(n_ctx));
}

void ModelDrafter::rollback(int32_t n_valid) {
  if (static_cast<int32_t>(cached_.size()) > n_valid) cached_.resize(static_cast<size_t>(n_valid));
}

void ModelDrafter::propose(std::span<const int32_t> context, int32_t k, const SamplingParams& sampling,
                           DraftProposal& out) {
  out.tokens.clear();
  const int32_t len = static_cast<int32_t>(context.size());
  k = std::min(k, n_ctx_ - len);
  if (k <= 0) return;
  // The cache is valid for the longest common prefix of what it holds and the context.
  size_t same = 0;
  while (same < cached_.size() && same < context.size() && cached_[same] == context[same]) ++same;
  cached_.resize(same);
  if (same == context.size()) {  // keep at least one token to compute the next logits from
    cached_.pop_back();
    --same;
  }
  const int32_t n_vocab = model_->config().n_vocab;
  if (out.q.size() < static_cast<size_t>(k)) out.q.resize(static_cast<size_t>(k));
  SeqInput in;
  in.block_table = seq_.table();
  in.logits = LogitsMode::kLast;
  in.tokens = context.subspan(same);
  in.pos0 = static_cast<int32_t>(same);
  cached_.assign(context.begin(), context.end());
  for (int32_t i = 0; i < k; ++i) {
    model_->forward(std::span<const SeqInput>(&in, 1), kv_, out_, pool_);
    TokenDistribution& q = out.q[static_cast<size_t>(i)];
    q.from_logits(out_.logits.data(), n_vocab, sampling);
    int32_t t;
    if (sampling.temperature <= 0.0f) {
      t = static_cast<int32_t>(std::max_element(q.probs().begin(), q.probs().end()) - q.probs().begin());
    } else {
      t = rng_.draw(q.probs(), 1.0);
    }
    out.tokens.push_back(t);
    if (i + 1 < k) {
      cached_.push_back(t);
      in.tokens = std::span<const int32_t>(&cached_.back(), 1);
      in.pos0 = static_cast<int32_t>(cached_.size()) - 1;
    }
  }
}

void NgramDrafter::propose(std::span<const int32_t> context, int32_t k, const SamplingParams& sampling,
                           DraftProposal& out) {
  out.tokens.clear();
  const int32_t len = static_cast<int32_t>(context.size());
  for (int32_t n = std::min(n_max_, len - 1); n >= 1 && out.tokens.empty(); --n) {
    const auto tail = context.subspan(static_cast<size_t>(len - n));
    // Most recent earlier occurrence whose continuation lies inside the context.
    for (int32_t j = len - n - 1; j >= 0; --j) {
      if (!std::equal(tail.begin(), tail.end(), context.begin() + j)) continue;
      for (int32_t i = j + n; i < len && static_cast<int32_t>(out.tokens.size()) < k; ++i) {
        out.tokens.push_back(context[static_cast<size_t>(i)]);
      }
      break;
    }
  }
  if (out.q.size() < out.tokens.size()) out.q.resize(out.tokens.size());
  for (size_t i = 0; i < out.tokens.size(); ++i) out.q[i].one_hot(out.tokens[i], n_vocab_);
}

Result<std::shared_ptr<const Model>> make_self_draft(const Model& target, DType type) {
  namespace fs = std::filesystem;
  const char* tmp = std::getenv("TMPDIR");
  const fs::path dir = tmp != nullptr && *tmp != '\0' ? fs::path(tmp) : fs::temp_directory_path();
  const fs::path path = dir / ("llmopt-self-draft-" + std::to_string(::getpid()) + ".gguf");
  ConvertOptions opts;
  opts.outtype = type;
  if (Status st = write_gguf_model(target.source(), path.string(), opts); !st.ok()) {
    std::error_code ec;
    fs::remove(path, ec);
    return error("making the self-draft: " + st.message());
  }
  LoadOptions lo;
  lo.repack = true;  // the draft only runs
  auto m = load_model(path.string(), lo);
  std::error_code ec;
  fs::remove(path, ec);  // the mapping stays valid after the name is gone
  if (!m.ok()) return error("loading the self-draft: " + m.status().message());
  return std::shared_ptr<const Model>(std::move(m).value());
}

}  // namespace llmopt
