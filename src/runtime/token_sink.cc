// TokenSink: EOS, stop strings, streaming, length limit.
#include "runtime/token_sink.h"

#include <algorithm>

namespace llmopt {

Result<int32_t> check_generate_request(const Model& model, std::span<const int32_t> prompt,
                                       const GenerateOptions& opts) {
  const ModelConfig& cfg = model.config();
  LLMOPT_RETURN_IF_ERROR(validate_sampling(opts.sampling));
  if (prompt.empty()) return error("the prompt is empty (no tokens to start from)");
  if (opts.block_size <= 0) return error("block size must be positive");
  const int32_t n_ctx = opts.n_ctx > 0 ? opts.n_ctx : cfg.n_ctx_train;
  if (cfg.arch == Arch::kGpt2 && n_ctx > cfg.n_ctx_train) {
    return error("context " + std::to_string(n_ctx) + " exceeds the model's " + std::to_string(cfg.n_ctx_train) +
                 " learned positions");
  }
  const int32_t n_prompt = static_cast<int32_t>(prompt.size());
  if (n_prompt >= n_ctx) {
    return error("the prompt is " + std::to_string(n_prompt) + " tokens, longer than the context (" +
                 std::to_string(n_ctx) + " tokens, at least one must be left to generate)");
  }
  for (int32_t t : prompt) {
    if (t < 0 || t >= cfg.n_vocab) return error("prompt token id " + std::to_string(t) + " is out of range");
  }
  int32_t max_total = n_ctx;
  if (opts.n_predict >= 0) max_total = std::min(n_ctx, n_prompt + opts.n_predict);
  return max_total;
}

TokenSink::TokenSink(const Model& model, const GenerateOptions& opts, int32_t n_prompt, int32_t max_total,
                     const TextCallback& on_text, GenerateResult& res)
    : model_(model), opts_(opts), n_total_(n_prompt), max_total_(max_total), on_text_(on_text), res_(res) {
  const int32_t n_ctx = opts.n_ctx > 0 ? opts.n_ctx : model.config().n_ctx_train;
  limit_reason_ = (opts.n_predict >= 0 && n_prompt + opts.n_predict <= n_ctx) ? "length" : "context";
  if (n_total_ >= max_total_) res_.stop_reason = limit_reason_;
}

size_t TokenSink::holdback(const std::string& t) const {
  size_t hold = 0;
  for (const auto& s : opts_.stop) {
    if (s.empty()) continue;
    for (size_t k = std::min(s.size() - 1, t.size()); k > hold; --k) {
      if (t.compare(t.size() - k, k, s, 0, k) == 0) {
        hold = k;
        break;
      }
    }
  }
  return hold;
}

bool TokenSink::push(int32_t next) {
  if (done()) return false;
  const Tokenizer* tok = model_.has_tokenizer() ? &model_.tokenizer() : nullptr;
  res_.tokens.push_back(next);
  ++n_total_;
  if (!opts_.ignore_eos && tok != nullptr && next == tok->eos()) {
    res_.stop_reason = "eos";
    return false;
  }
  text_ += streamer_.push(tok != nullptr ? tok->token_to_piece(next) : std::string());
  size_t stop_at = std::string::npos;
  for (const auto& s : opts_.stop) {
    if (s.empty()) continue;
    const size_t from = emitted_ > s.size() ? emitted_ - s.size() : 0;
    const size_t at = text_.find(s, from);
    if (at != std::string::npos && at < stop_at) stop_at = at;
  }
  if (stop_at != std::string::npos) {
    text_.resize(stop_at);
    res_.stop_reason = "stop";
    return false;
  }
  const size_t ready_end = text_.size() - holdback(text_);
  if (ready_end > emitted_) {
    const std::string ready = text_.substr(emitted_, ready_end - emitted_);
    emitted_ = ready_end;
    if (on_text_ && !on_text_(ready)) {
      res_.stop_reason = "callback";
      return false;
    }
  }
  if (n_total_ >= max_total_) {
    res_.stop_reason = limit_reason_;
    return false;
  }
  return true;
}

void TokenSink::finish() {
  const std::string& why = res_.stop_reason;
  if (why != "stop" && why != "callback") text_ += streamer_.flush();
  if (on_text_ && text_.size() > emitted_ && why != "callback") on_text_(text_.substr(emitted_));
  res_.text = std::move(text_);
  res_.stats.n_generated = static_cast<int32_t>(res_.tokens.size());
}

}  // namespace llmopt
