// generate(): prefill + decode loop with optional KV cache.
#include "runtime/generate.h"

#include <algorithm>
#include <chrono>

#include "core/check.h"
#include "runtime/kv/block_pool.h"
#include "runtime/token_sink.h"

namespace llmopt {
namespace {

using Clock = std::chrono::steady_clock;
double gen_seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

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
  LLMOPT_ASSIGN_OR_RETURN(const int32_t max_total, check_generate_request(model, prompt, opts));
  const int32_t n_prompt = static_cast<int32_t>(prompt.size());

  const int32_t n_blocks = blocks_for_tokens(max_total, opts.block_size);
  KvStore kv = KvStore::for_model(cfg, n_blocks, opts.block_size);
  BlockPool pool_blocks(n_blocks);
  SeqBlocks seq(pool_blocks, opts.block_size);
  LLMOPT_CHECK(seq.reserve(max_total));

  auto sampler = make_sampler_chain(opts.sampling);
  for (int32_t t : prompt) sampler->accept(t);

  std::vector<int32_t> all(prompt.begin(), prompt.end());
  GenerateResult res;
  res.stats.n_prompt = n_prompt;
  TokenSink sink(model, opts, n_prompt, max_total, on_text, res);
  ForwardOutput out;
  auto t0 = Clock::now();
  int32_t n_cached = 0;  // positions whose K/V are in the cache
  while (!sink.done()) {
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
      res.stats.prompt_seconds = gen_seconds_since(t0);
      t0 = Clock::now();
    }
    all.push_back(next);
    sink.push(next);
  }
  sink.finish();
  res.stats.gen_seconds = res.tokens.size() > 1 ? gen_seconds_since(t0) : 0.0;
  return res;
}

}  // namespace llmopt
