// The draft -> verify -> accept loop.
#include "runtime/spec/spec_decode.h"

#include <algorithm>
#include <chrono>

#include "core/check.h"
#include "runtime/kv/block_pool.h"
#include "runtime/spec/adaptive_k.h"
#include "runtime/spec/verifier.h"
#include "runtime/token_sink.h"

namespace llmopt {
namespace {
using Clock = std::chrono::steady_clock;
double since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void grow(std::vector<int64_t>& v, size_t n) {
  if (v.size() < n) v.resize(n, 0);
}
}  // namespace

void SpecStats::add(const SpecStats& o) {
  rounds += o.rounds;
  drafted += o.drafted;
  accepted += o.accepted;
  target_passes += o.target_passes;
  generated += o.generated;
  grow(drafted_at, o.drafted_at.size());
  grow(accepted_at, o.accepted_at.size());
  grow(rounds_with_k, o.rounds_with_k.size());
  for (size_t i = 0; i < o.drafted_at.size(); ++i) drafted_at[i] += o.drafted_at[i];
  for (size_t i = 0; i < o.accepted_at.size(); ++i) accepted_at[i] += o.accepted_at[i];
  for (size_t i = 0; i < o.rounds_with_k.size(); ++i) rounds_with_k[i] += o.rounds_with_k[i];
  draft_seconds += o.draft_seconds;
  target_seconds += o.target_seconds;
  prefill_seconds += o.prefill_seconds;
}

Result<GenerateResult> generate_speculative(const Model& target, Drafter& drafter, std::span<const int32_t> prompt,
                                            const GenerateOptions& opts, const SpecOptions& spec, ThreadPool& pool,
                                            SpecStats* stats_out, const TextCallback& on_text) {
  LLMOPT_ASSIGN_OR_RETURN(const int32_t max_total, check_generate_request(target, prompt, opts));
  if (spec.k < 1 || spec.k > 64) return error("the draft length k must be in 1..64");
  if (opts.sampling.repeat_penalty != 1.0f) {
    return error("speculative decoding does not support a repetition penalty (use --repeat-penalty 1)");
  }
  if (!opts.kv_cache) return error("speculative decoding needs the KV cache");
  const ModelConfig& cfg = target.config();
  const int32_t n_ctx = opts.n_ctx > 0 ? opts.n_ctx : cfg.n_ctx_train;
  const int32_t n_prompt = static_cast<int32_t>(prompt.size());
  const bool greedy = opts.sampling.temperature <= 0.0f;

  const int32_t cap = std::min(n_ctx, max_total + spec.k);
  const int32_t n_blocks = blocks_for_tokens(cap, opts.block_size);
  KvStore kv = KvStore::for_model(cfg, n_blocks, opts.block_size);
  BlockPool blocks(n_blocks);
  SeqBlocks seq(blocks, opts.block_size);
  LLMOPT_CHECK(seq.reserve(cap));

  GenerateResult res;
  res.stats.n_prompt = n_prompt;
  SpecStats st;
  TokenSink sink(target, opts, n_prompt, max_total, on_text, res);
  std::vector<int32_t> all(prompt.begin(), prompt.end());
  ForwardOutput out;
  auto t0 = Clock::now();

  // Prefill all but the last prompt token; each round then feeds [last token, drafts...].
  if (n_prompt > 1) {
    SeqInput in;
    in.tokens = prompt.first(static_cast<size_t>(n_prompt - 1));
    in.pos0 = 0;
    in.block_table = seq.table();
    in.logits = LogitsMode::kNone;
    target.forward(std::span<const SeqInput>(&in, 1), kv, out, pool);
    st.prefill_seconds = since(t0);
  }

  AdaptiveK local_chooser(spec.k, spec.adaptive);
  AdaptiveK& chooser = spec.adaptive && spec.adaptive_state != nullptr ? *spec.adaptive_state : local_chooser;
  SpecRng rng(opts.sampling.seed);
  DraftProposal prop;
  std::vector<TokenDistribution> p(static_cast<size_t>(spec.k) + 1);
  std::vector<const TokenDistribution*> pp, qq;
  std::vector<int32_t> argmax(static_cast<size_t>(spec.k) + 1);
  bool first = true;
  while (!sink.done()) {
    const int32_t len = static_cast<int32_t>(all.size());
    // Drafting more than the tokens still allowed (or past the context) cannot help.
    const int32_t room = std::min(max_total - len - 1, n_ctx - len);
    int32_t k = std::min(chooser.choose(), std::max(0, room));
    const auto td = Clock::now();
    prop.tokens.clear();
    if (k > 0) drafter.propose(all, k, opts.sampling, prop);
    const double draft_s = k > 0 ? since(td) : 0.0;
    const int32_t m = static_cast<int32_t>(prop.tokens.size());
    LLMOPT_CHECK(m <= k);

    // Verify: one target pass over the last token and the m drafted ones.
    const auto tt = Clock::now();
    std::vector<int32_t> feed;
    feed.reserve(static_cast<size_t>(m) + 1);
    feed.push_back(all.back());
    feed.insert(feed.end(), prop.tokens.begin(), prop.tokens.end());
    SeqInput in;
    in.tokens = feed;
    in.pos0 = len - 1;
    in.block_table = seq.table();
    in.logits = LogitsMode::kAll;
    target.forward(std::span<const SeqInput>(&in, 1), kv, out, pool);
    Verdict v;
    if (greedy) {
      for (int32_t j = 0; j <= m; ++j) {
        const float* row = out.logits.data() + static_cast<size_t>(j) * cfg.n_vocab;
        argmax[static_cast<size_t>(j)] = static_cast<int32_t>(std::max_element(row, row + cfg.n_vocab) - row);
      }
      v = verify_greedy(prop.tokens, std::span<const int32_t>(argmax).first(static_cast<size_t>(m) + 1));
    } else {
      pp.clear();
      qq.clear();
      for (int32_t j = 0; j <= m; ++j) {
        p[static_cast<size_t>(j)].from_logits(out.logits.data() + static_cast<size_t>(j) * cfg.n_vocab, cfg.n_vocab,
                                              opts.sampling);
        pp.push_back(&p[static_cast<size_t>(j)]);
        if (j < m) qq.push_back(&prop.q[static_cast<size_t>(j)]);
      }
      v = verify_sampled(prop.tokens, pp, qq, rng);
    }
    const double target_s = since(tt);
    chooser.observe(m, v.n_accepted, draft_s, target_s);

    ++st.target_passes;
    grow(st.rounds_with_k, static_cast<size_t>(m) + 1);
    ++st.rounds_with_k[static_cast<size_t>(m)];
    if (m > 0) {
      ++st.rounds;
      st.drafted += m;
      st.accepted += v.n_accepted;
      grow(st.drafted_at, static_cast<size_t>(m));
      grow(st.accepted_at, static_cast<size_t>(m));
      for (int32_t j = 0; j < m; ++j) ++st.drafted_at[static_cast<size_t>(j)];
      for (int32_t j = 0; j < v.n_accepted; ++j) ++st.accepted_at[static_cast<size_t>(j)];
    }
    st.draft_seconds += draft_s;
    st.target_seconds += target_s;

    if (first) {
      res.stats.prompt_seconds = since(t0);
      t0 = Clock::now();
      first = false;
    }
    for (int32_t j = 0; j < v.n_accepted && !sink.done(); ++j) {
      all.push_back(prop.tokens[static_cast<size_t>(j)]);
      sink.push(prop.tokens[static_cast<size_t>(j)]);
    }
    if (!sink.done()) {
      all.push_back(v.next);
      sink.push(v.next);
    }
    drafter.rollback(static_cast<int32_t>(all.size()));
  }
  sink.finish();
  res.stats.gen_seconds = res.tokens.size() > 1 ? since(t0) : 0.0;
  st.generated = static_cast<int64_t>(res.tokens.size());
  if (stats_out != nullptr) *stats_out = st;
  return res;
}

}  // namespace llmopt
