// Drafters propose the next few tokens cheaply; the target then verifies them in one pass.
//   - ModelDrafter: a smaller model with the same vocabulary (its own KV cache, rolled back past
//     rejected tokens by resetting its computed length; the blocks after it are simply rewritten).
//   - NgramDrafter: prompt lookup: the continuation of the most recent earlier occurrence of the
//     context's last n tokens (n from N down to 1). No model; deterministic (one-hot draft).
//   - make_self_draft: a quantized copy of the target, made at load, used as a ModelDrafter.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"
#include "core/thread_pool.h"
#include "model/model.h"
#include "runtime/kv/block_pool.h"
#include "runtime/spec/distribution.h"

namespace llmopt {

struct DraftProposal {
  std::vector<int32_t> tokens;
  std::vector<TokenDistribution> q;  // the draft distribution of each proposed token (size >= tokens)
};

class Drafter {
 public:
  virtual ~Drafter() = default;
  virtual std::string name() const = 0;
  // True when proposing costs a model forward per token (worth measuring for adaptive k).
  virtual bool has_cost() const = 0;
  // Proposes up to k tokens after `context` (fewer, even none, is fine).
  virtual void propose(std::span<const int32_t> context, int32_t k, const SamplingParams& sampling,
                       DraftProposal& out) = 0;
  // Only the first n tokens of the context given to the last propose(), plus its accepted
  // proposals, remain valid.
  virtual void rollback(int32_t n_valid) {}
};

// Errors unless the two models can share token ids: same vocabulary size and, when both have
// tokenizers, the same token text for every id.
Status check_same_vocab(const Model& target, const Model& draft);

class ModelDrafter : public Drafter {
 public:
  // n_ctx: the longest context it will see. The drafter keeps a reference to `pool`.
  ModelDrafter(std::shared_ptr<const Model> draft, int32_t n_ctx, uint64_t seed, ThreadPool& pool,
               std::string label = "draft model");
  std::string name() const override { return label_; }
  bool has_cost() const override { return true; }
  void propose(std::span<const int32_t> context, int32_t k, const SamplingParams& sampling,
               DraftProposal& out) override;
  void rollback(int32_t n_valid) override;

 private:
  std::shared_ptr<const Model> model_;
  int32_t n_ctx_;
  ThreadPool& pool_;
  std::string label_;
  KvStore kv_;
  BlockPool blocks_;
  SeqBlocks seq_;
  std::vector<int32_t> cached_;  // tokens whose K/V are in the draft cache, in order
  SpecRng rng_;
  ForwardOutput out_;
};

class NgramDrafter : public Drafter {
 public:
  explicit NgramDrafter(int32_t n_max, int32_t n_vocab) : n_max_(n_max), n_vocab_(n_vocab) {}
  std::string name() const override { return "n-gram (N=" + std::to_string(n_max_) + ")"; }
  bool has_cost() const override { return false; }
  void propose(std::span<const int32_t> context, int32_t k, const SamplingParams& sampling,
               DraftProposal& out) override;

 private:
  int32_t n_max_;
  int32_t n_vocab_;
};

// The target's weights re-quantized to `type` (e.g. Q4_0), loaded as a separate model.
Result<std::shared_ptr<const Model>> make_self_draft(const Model& target, DType type);

}  // namespace llmopt
