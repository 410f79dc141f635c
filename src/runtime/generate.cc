// generate(): prefill + decode loop with optional KV cache.
#include "runtime/generate.h"

#include <algorithm>
#include <chrono>

#include "core/check.h"
#include "runtime/kv/block_pool.h"

namespace llmopt {
namespace {

using Clock = std::chrono::steady_clock;
double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

// Length of the longest prefix of s that ends on a UTF-8 character boundary.
size_t complete_utf8_prefix(const std::string& s) {
  size_t n = s.size();
  // Walk back over at most 3 continuation bytes to find the last lead byte.
  size_t i = n;
  int back = 0;
  while (i > 0 && back < 4) {
    unsigned char c = static_cast<unsigned char>(s[i - 1]);
    if ((c & 0xC0) != 0x80) {
      size_t need = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 1;
      return (n - (i - 1) >= need) ? n : i - 1;
    }
    --i;
    ++back;
  }
  return n;
}

}  // namespace

std::string Utf8Streamer::push(const std::string& bytes) {
  pending_ += bytes;
  size_t k = complete_utf8_prefix(pending_);
  std::string out = pending_.substr(0, k);
  pending_.erase(0, k);
  return out;
}

std::string Utf8Streamer::flush() {
  std::string out;
  out.swap(pending_);
  return out;
}

Result<GenerateResult> generate(const Model& model, std::span<const int32_t> prompt, const GenerateOptions& opts,
                                ThreadPool& pool, const TextCallback& on_text) {
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

  const int32_t n_blocks = blocks_for_tokens(max_total, opts.block_size);
  KvStore kv(cfg.n_layer, cfg.kv_dim(), n_blocks, opts.block_size);
  BlockPool pool_blocks(n_blocks);
  SeqBlocks seq(pool_blocks, opts.block_size);
  LLMOPT_CHECK(seq.reserve(max_total));

  auto sampler = make_sampler_chain(opts.sampling);
  for (int32_t t : prompt) sampler->accept(t);

  std::vector<int32_t> all(prompt.begin(), prompt.end());
  GenerateResult res;
  res.stats.n_prompt = n_prompt;
  ForwardOutput out;
  Utf8Streamer streamer;
  std::string text;
  const Tokenizer* tok = model.has_tokenizer() ? &model.tokenizer() : nullptr;

  // Text is released to the callback only when it cannot be the start of a stop string.
  size_t emitted = 0;
  auto holdback = [&](const std::string& t) {
    size_t hold = 0;
    for (const auto& s : opts.stop) {
      if (s.empty()) continue;
      for (size_t k = std::min(s.size() - 1, t.size()); k > hold; --k) {
        if (t.compare(t.size() - k, k, s, 0, k) == 0) {
          hold = k;
          break;
        }
      }
    }
    return hold;
  };
  const char* limit_reason = (opts.n_predict >= 0 && n_prompt + opts.n_predict <= n_ctx) ? "length" : "context";

  auto t0 = Clock::now();
  int32_t n_cached = 0;  // positions whose K/V are in the cache
  for (;;) {
    if (static_cast<int32_t>(all.size()) >= max_total) {
      res.stop_reason = limit_reason;
      break;
    }
    SeqInput in;
    const int32_t start = opts.kv_cache ? n_cached : 0;
    in.tokens = std::span<const int32_t>(all.data() + start, all.size() - static_cast<size_t>(start));
    in.pos0 = start;
    in.block_table = seq.table();
    in.logits = LogitsMode::kLast;
    model.forward(std::span<const SeqInput>(&in, 1), kv, out, pool);
    n_cached = static_cast<int32_t>(all.size());

    const int32_t next = sampler->sample(out.logits.data(), cfg.n_vocab);
    sampler->accept(next);
    if (res.tokens.empty()) {
      res.stats.prompt_seconds = seconds_since(t0);
      t0 = Clock::now();
    }
    res.tokens.push_back(next);
    all.push_back(next);
    if (!opts.ignore_eos && tok != nullptr && next == tok->eos()) {
      res.stop_reason = "eos";
      break;
    }
    text += streamer.push(tok != nullptr ? tok->token_to_piece(next) : std::string());
    size_t stop_at = std::string::npos;
    for (const auto& s : opts.stop) {
      if (s.empty()) continue;
      const size_t from = emitted > s.size() ? emitted - s.size() : 0;
      const size_t at = text.find(s, from);
      if (at != std::string::npos && at < stop_at) stop_at = at;
    }
    if (stop_at != std::string::npos) {
      text.resize(stop_at);
      res.stop_reason = "stop";
      break;
    }
    const size_t ready_end = text.size() - holdback(text);
    if (ready_end > emitted) {
      const std::string ready = text.substr(emitted, ready_end - emitted);
      emitted = ready_end;
      if (on_text && !on_text(ready)) {
        res.stop_reason = "callback";
        break;
      }
    }
  }
  if (res.stop_reason != "stop" && res.stop_reason != "callback") text += streamer.flush();
  if (on_text && text.size() > emitted && res.stop_reason != "callback") on_text(text.substr(emitted));
  res.stats.n_generated = static_cast<int32_t>(res.tokens.size());
  res.stats.gen_seconds = res.tokens.size() > 1 ? seconds_since(t0) : 0.0;
  res.text = std::move(text);
  return res;
}

}  // namespace llmopt
