// Model: owns config, weights and tokenizer, and runs the batched forward pass. This file flattens
// a batch of sequences into one token list (checking the caller's invariants) and hands it to the
// architecture's script; the math lives in blocks.cc and arch/.
#include "model/model.h"

#include <algorithm>
#include <utility>

#include "core/check.h"
#include "model/arch/arch.h"
#include "model/blocks.h"

namespace llmopt {

Model::Model(ModelConfig config, Weights weights, std::unique_ptr<Tokenizer> tokenizer,
             std::shared_ptr<const WeightSource> source)
    : config_(std::move(config)),
      weights_(std::move(weights)),
      tokenizer_(std::move(tokenizer)),
      source_(std::move(source)) {
  LLMOPT_CHECK(static_cast<int32_t>(weights_.layers.size()) == config_.n_layer);
  LLMOPT_CHECK(weights_.tok_embd.present() && weights_.output.present());
}

size_t Model::weight_bytes() const {
  const Weights& w = weights_;
  size_t total = w.tok_embd.nbytes + w.pos_embd.nbytes + w.output_norm.nbytes + w.output_norm_b.nbytes;
  if (w.output.data != w.tok_embd.data) total += w.output.total_bytes();  // a tied head is not counted twice
  for (const LayerWeights& l : w.layers) {
    for (const TensorView* t : {&l.attn_norm, &l.attn_norm_b, &l.wq, &l.wk, &l.wv, &l.wqkv, &l.bqkv, &l.wo, &l.bo,
                                &l.ffn_norm, &l.ffn_norm_b, &l.w_gate, &l.w_up, &l.b_up, &l.w_down, &l.b_down}) {
      total += t->total_bytes();
    }
  }
  return total;
}

void Model::forward(std::span<const SeqInput> batch, KvStore& kv, ForwardOutput& out, ThreadPool& pool) const {
  forward(batch, kv, out, pool, nullptr);
}

void Model::forward(std::span<const SeqInput> batch, KvStore& kv, ForwardOutput& out, ThreadPool& pool,
                    LinearObserver* observer) const {
  const ModelConfig& cfg = config_;
  LLMOPT_CHECK(kv.n_layer() == cfg.n_layer && kv.kv_dim() == cfg.kv_dim());
  const int64_t bs = kv.block_size();

  // Flatten the batch. Inputs without tokens contribute no rows whatever their logits mode.
  blocks::TokenBatch tokens;
  tokens.observer = observer;
  out.row_offset.clear();
  for (const SeqInput& in : batch) {
    out.row_offset.push_back(tokens.n_out());
    const int64_t n = static_cast<int64_t>(in.tokens.size());
    const int64_t end = static_cast<int64_t>(in.pos0) + n;
    LLMOPT_CHECK(in.pos0 >= 0);
    LLMOPT_CHECK_MSG(static_cast<int64_t>(in.block_table.size()) * bs >= end, "block table too short");
    LLMOPT_CHECK_MSG(cfg.arch != Arch::kGpt2 || end <= cfg.n_ctx_train, "position past GPT-2's context");
    for (int64_t j = 0; j < n; ++j) {
      const int32_t id = in.tokens[j];
      LLMOPT_CHECK_MSG(id >= 0 && id < cfg.n_vocab, "token id out of range");
      if (in.logits == LogitsMode::kAll || (in.logits == LogitsMode::kLast && j == n - 1)) {
        tokens.out_rows.push_back(tokens.n_tok());
      }
      tokens.ids.push_back(id);
      tokens.pos.push_back(static_cast<int32_t>(in.pos0 + j));
      tokens.block_table.push_back(in.block_table);
    }
    if (n > 0) tokens.max_pos = std::max(tokens.max_pos, static_cast<int32_t>(end - 1));
  }

  out.logits.resize(static_cast<size_t>(tokens.n_out()) * cfg.n_vocab);
  if (tokens.n_tok() == 0) return;
  switch (cfg.arch) {
    case Arch::kGpt2:
      arch::gpt2_forward(cfg, weights_, tokens, kv, pool, out.logits.data());
      break;
    case Arch::kLlama:
      arch::llama_forward(cfg, weights_, tokens, kv, pool, out.logits.data());
      break;
  }
}

}  // namespace llmopt
