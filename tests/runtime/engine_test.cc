// The batching engine on real tiny models: batched output equals each request alone (greedy and
// seeded sampling), aborts free every block, preemption and chunked prefill and prefix hits leave
// outputs unchanged, and bad requests are refused with a reason.
#include "runtime/engine.h"

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <random>

#include "core/mmap_file.h"
#include "model/loader.h"
#include "runtime/generate.h"
#include "runtime/spec/drafter.h"
#include "test_util.h"

namespace llmopt {
namespace {

struct ModelCase {
  const char* name;
  const char* path;
};

class EngineTest : public ::testing::TestWithParam<ModelCase> {
 protected:
  void SetUp() override {
    LLMOPT_REQUIRE_DATA(GetParam().path);
    auto m = load_model(test::data_path(GetParam().path));
    ASSERT_TRUE(m.ok()) << m.status().message();
    model_ = std::move(m).value();
  }

  // 32 varied prompts: different lengths, some sharing a prefix.
  std::vector<std::vector<int32_t>> prompts(int n, uint32_t seed = 3) const {
    std::mt19937 rng(seed);
    const auto base =
        model_->tokenizer().encode("Once upon a time, there was a little dog named Max. He liked", true);
    std::vector<std::vector<int32_t>> out;
    for (int i = 0; i < n; ++i) {
      std::vector<int32_t> p;
      if (i % 3 == 0)
        p = base;
      else
        p.push_back(model_->tokenizer().bos() >= 0 ? model_->tokenizer().bos() : 1);
      const int extra = static_cast<int>(rng() % 40) + 1;
      for (int k = 0; k < extra; ++k)
        p.push_back(static_cast<int32_t>(rng() % static_cast<uint32_t>(model_->config().n_vocab)));
      out.push_back(std::move(p));
    }
    return out;
  }

  // Runs all specs through one engine; returns each request's output tokens.
  std::vector<std::vector<int32_t>> run(const EngineConfig& cfg, const std::vector<RequestSpec>& specs,
                                        EngineMetrics* metrics = nullptr) {
    auto eng = Engine::create(*model_, cfg, pool_);
    EXPECT_TRUE(eng.ok()) << eng.status().message();
    if (!eng.ok()) return {};
    std::map<int64_t, size_t> index;
    std::vector<std::vector<int32_t>> out(specs.size());
    for (size_t i = 0; i < specs.size(); ++i) {
      auto id = (*eng)->add_request(specs[i], [&out, i](const TokenEvent& ev) {
        if (ev.token >= 0) out[i].push_back(ev.token);
      });
      EXPECT_TRUE(id.ok()) << id.status().message();
    }
    int guard = 0;
    while ((*eng)->has_unfinished() && guard++ < 100000) (*eng)->step();
    EXPECT_EQ((*eng)->kv().pool().n_used(), 0);
    if (metrics != nullptr) *metrics = (*eng)->metrics();
    return out;
  }

  std::vector<int32_t> alone(const RequestSpec& spec) {
    GenerateOptions o;
    o.n_predict = spec.max_new_tokens;
    o.sampling = spec.sampling;
    o.ignore_eos = spec.ignore_eos;
    auto r = generate(*model_, spec.prompt, o, pool_);
    EXPECT_TRUE(r.ok()) << r.status().message();
    return r.ok() ? r->tokens : std::vector<int32_t>{};
  }

  std::vector<RequestSpec> specs(int n, float temperature) const {
    std::vector<RequestSpec> out;
    int i = 0;
    for (auto& p : prompts(n)) {
      RequestSpec s;
      s.prompt = std::move(p);
      s.max_new_tokens = 8 + (i * 7) % 33;
      s.sampling.temperature = temperature;
      s.sampling.seed = 100 + static_cast<uint64_t>(i);
      s.ignore_eos = true;
      out.push_back(std::move(s));
      ++i;
    }
    return out;
  }

  std::unique_ptr<Model> model_;
  ThreadPool pool_{2};
};

TEST_P(EngineTest, BatchedGreedyEqualsEachAlone) {
  const auto sp = specs(32, 0.0f);
  EngineConfig cfg;
  cfg.sched.max_batch_tokens = 256;
  cfg.sched.max_running = 32;
  EngineMetrics m;
  const auto batched = run(cfg, sp, &m);
  ASSERT_EQ(batched.size(), sp.size());
  for (size_t i = 0; i < sp.size(); ++i) {
    EXPECT_EQ(batched[i], alone(sp[i])) << "request " << i;
    EXPECT_EQ(static_cast<int32_t>(batched[i].size()), sp[i].max_new_tokens);
  }
  EXPECT_GT(m.tokens_per_step.mean(), 8.0);  // really batched
  EXPECT_EQ(m.requests_finished, 32);
}

TEST_P(EngineTest, SeededSamplingIsIndependentOfBatchComposition) {
  const auto sp = specs(12, 0.9f);
  EngineConfig cfg;
  const auto batched = run(cfg, sp);
  for (size_t i = 0; i < sp.size(); ++i) EXPECT_EQ(batched[i], alone(sp[i])) << "request " << i;
}

TEST_P(EngineTest, ChunkedPrefillPreemptionAndPrefixHitsKeepOutputs) {
  auto sp = specs(16, 0.8f);
  for (auto& s : sp) s.max_new_tokens = 40;
  EngineConfig big;
  big.sched.max_batch_tokens = 1024;
  big.prefix_caching = false;
  const auto ref = run(big, sp);

  EngineConfig chunked = big;
  chunked.sched.max_batch_tokens = 7;  // prompts spread over many steps
  EXPECT_EQ(run(chunked, sp), ref);

  EngineConfig cached = big;
  cached.prefix_caching = true;
  cached.block_size = 4;
  cached.sched.max_running = 4;  // later requests arrive after the shared prefix is cached
  EngineMetrics mc;
  EXPECT_EQ(run(cached, sp, &mc), ref);
  EXPECT_GT(mc.prefix_hit_tokens, 0);

  EngineConfig tight = big;
  tight.block_size = 8;
  tight.n_ctx = 128;
  tight.kv_tokens = 256;  // 32 blocks for 16 requests of up to ~100 tokens
  tight.prefix_caching = true;
  EngineMetrics mt;
  EXPECT_EQ(run(tight, sp, &mt), ref);
  EXPECT_GT(mt.preemptions, 0);
}

// The logits of a prompt computed in chunks of 5 tokens (each chunk attending to the cached K/V of
// the ones before, through a paged block table) equal those of one whole prefill.
TEST_P(EngineTest, ChunkedPrefillGivesTheSameLogitsAsOnePrefill) {
  const auto prompt = prompts(1)[0];
  const int32_t n = static_cast<int32_t>(prompt.size());
  const int32_t n_vocab = model_->config().n_vocab;
  auto logits_of = [&](int32_t chunk) {
    KvManager kvm(64, 4, false);
    const ModelConfig& mc = model_->config();
    KvStore store(mc.n_layer, mc.kv_dim(), 64, 4);
    SeqKv seq;
    EXPECT_TRUE(kvm.allocate(seq, prompt, n));
    std::vector<float> all;
    ForwardOutput out;
    for (int32_t p = 0; p < n; p += chunk) {
      SeqInput in;
      in.tokens = std::span<const int32_t>(prompt).subspan(static_cast<size_t>(p),
                                                           static_cast<size_t>(std::min(chunk, n - p)));
      in.pos0 = p;
      in.block_table = seq.table;
      in.logits = LogitsMode::kAll;
      model_->forward(std::span<const SeqInput>(&in, 1), store, out, pool_);
      all.insert(all.end(), out.logits.begin(), out.logits.end());
    }
    return all;
  };
  const auto whole = logits_of(n);
  const auto chunked = logits_of(5);
  ASSERT_EQ(whole.size(), static_cast<size_t>(n) * n_vocab);
  ASSERT_EQ(chunked.size(), whole.size());
  float max_diff = 0.0f;
  for (size_t i = 0; i < whole.size(); ++i) max_diff = std::max(max_diff, std::fabs(whole[i] - chunked[i]));
  EXPECT_LE(max_diff, 1e-5f);
}

TEST_P(EngineTest, AbortFreesAllBlocksAndNotifies) {
  EngineConfig cfg;
  auto eng = Engine::create(*model_, cfg, pool_);
  ASSERT_TRUE(eng.ok());
  const auto sp = specs(4, 0.0f);
  std::vector<int64_t> ids;
  FinishReason last = FinishReason::kNone;
  for (const auto& s : sp) {
    auto id = (*eng)->add_request(s, [&](const TokenEvent& ev) {
      if (ev.finished) last = ev.reason;
    });
    ASSERT_TRUE(id.ok());
    ids.push_back(*id);
  }
  (*eng)->step();
  (*eng)->step();
  EXPECT_GT((*eng)->kv().pool().n_used(), 0);
  ASSERT_TRUE((*eng)->abort(ids[1]));
  EXPECT_EQ(last, FinishReason::kAborted);
  EXPECT_FALSE((*eng)->abort(ids[1]));
  for (int64_t id : {ids[0], ids[2], ids[3]}) ASSERT_TRUE((*eng)->abort(id));
  EXPECT_EQ((*eng)->kv().pool().n_used(), 0);
  EXPECT_FALSE((*eng)->has_unfinished());
  EXPECT_EQ((*eng)->metrics().requests_aborted, 4);
}

TEST_P(EngineTest, RefusesBadRequestsAndConfigs) {
  EngineConfig cfg;
  cfg.n_ctx = 64;
  cfg.sched.max_waiting = 1;
  auto eng = Engine::create(*model_, cfg, pool_);
  ASSERT_TRUE(eng.ok());
  RequestSpec s;
  auto e1 = (*eng)->add_request(s);
  ASSERT_FALSE(e1.ok());
  EXPECT_NE(e1.status().message().find("empty"), std::string::npos);
  s.prompt = {1, model_->config().n_vocab};
  auto e2 = (*eng)->add_request(s);
  ASSERT_FALSE(e2.ok());
  EXPECT_NE(e2.status().message().find("out of range"), std::string::npos);
  s.prompt.assign(64, 1);
  auto e3 = (*eng)->add_request(s);
  ASSERT_FALSE(e3.ok());
  EXPECT_NE(e3.status().message().find("longer than the context"), std::string::npos);
  s.prompt.assign(4, 1);
  ASSERT_TRUE((*eng)->add_request(s).ok());
  auto e4 = (*eng)->add_request(s);
  ASSERT_FALSE(e4.ok());
  EXPECT_NE(e4.status().message().find("waiting queue is full"), std::string::npos);
  EXPECT_EQ((*eng)->metrics().requests_rejected, 4);

  EngineConfig small;
  small.n_ctx = 64;
  small.kv_tokens = 16;
  auto bad = Engine::create(*model_, small, pool_);
  ASSERT_FALSE(bad.ok());
  EXPECT_NE(bad.status().message().find("less than one full context"), std::string::npos);
  EngineConfig zero;
  zero.sched.max_batch_tokens = 0;
  EXPECT_FALSE(Engine::create(*model_, zero, pool_).ok());
  // The pool is committed at start: a budget above the available memory is refused, not attempted.
  const size_t avail = available_memory_bytes();
  if (avail < (size_t{1} << 40)) {
    EngineConfig huge;
    huge.n_ctx = 64;
    huge.kv_mem_bytes = static_cast<int64_t>(avail) + (int64_t{1} << 30);
    auto too_big = Engine::create(*model_, huge, pool_);
    ASSERT_FALSE(too_big.ok());
    EXPECT_NE(too_big.status().message().find("exceeds the available memory"), std::string::npos)
        << too_big.status().message();
  }
}

// Speculation inside the batching engine (prompt-lookup drafts per request, counted in the step's
// token budget): greedy output stays exactly each request's plain output, also when the budget cuts
// drafts off and when blocks run out (preemption); rejected drafts give their blocks back.
TEST_P(EngineTest, SpeculativeRequestsKeepGreedyOutputs) {
  auto sp = specs(16, 0.0f);
  for (auto& s : sp) {
    s.max_new_tokens = 48;
    s.spec_ngram = 3;
    s.spec_k = 4;
  }
  std::vector<std::vector<int32_t>> ref;
  for (const auto& s : sp) ref.push_back(alone(s));
  EngineConfig big;
  big.sched.max_batch_tokens = 512;
  EngineMetrics m;
  EXPECT_EQ(run(big, sp, &m), ref);
  EXPECT_GT(m.spec_drafted_tokens, 50);
  EXPECT_GT(m.spec_accepted_tokens, 0);
  EXPECT_LE(m.spec_accepted_tokens, m.spec_drafted_tokens);

  EngineConfig small = big;
  small.sched.max_batch_tokens = 6;  // drafts get cut by the budget
  EXPECT_EQ(run(small, sp), ref);

  EngineConfig tight = big;
  tight.block_size = 8;
  tight.n_ctx = 128;
  tight.kv_tokens = 256;
  EngineMetrics mt;
  EXPECT_EQ(run(tight, sp, &mt), ref);
  EXPECT_GT(mt.preemptions, 0);
}

// A draft model per request (a quantized copy of the target): greedy outputs stay each request's
// plain output with a roomy budget, a budget that cuts drafts, and preemption; sampling runs to length.
TEST_P(EngineTest, DraftModelSpeculationKeepsGreedyOutputs) {
  auto draft = make_self_draft(*model_, DType::kQ4_0);
  if (!draft.ok()) draft = make_self_draft(*model_, DType::kF16);
  ASSERT_TRUE(draft.ok()) << draft.status().message();
  auto sp = specs(8, 0.0f);
  for (auto& s : sp) {
    s.max_new_tokens = 40;
    s.spec_draft_model = *draft;
    s.spec_k = 3;
  }
  std::vector<std::vector<int32_t>> ref;
  for (const auto& s : sp) ref.push_back(alone(s));
  EngineConfig big;
  EngineMetrics m;
  EXPECT_EQ(run(big, sp, &m), ref);
  EXPECT_GT(m.spec_drafted_tokens, 40);
  EXPECT_GT(m.spec_accepted_tokens, 0);
  EXPECT_LE(m.spec_accepted_tokens, m.spec_drafted_tokens);
  EngineConfig small = big;
  small.sched.max_batch_tokens = 5;
  EXPECT_EQ(run(small, sp), ref);
  EngineConfig tight = big;
  tight.block_size = 8;
  tight.n_ctx = 128;
  tight.kv_tokens = 160;
  EngineMetrics mt;
  EXPECT_EQ(run(tight, sp, &mt), ref);
  EXPECT_GT(mt.preemptions, 0);

  auto sampled = specs(4, 0.8f);
  for (auto& s : sampled) {
    s.max_new_tokens = 24;
    s.spec_draft_model = *draft;
  }
  const auto out = run(big, sampled);
  for (const auto& o : out) EXPECT_EQ(o.size(), 24u);
}

TEST_P(EngineTest, SpeculativeSamplingRunsAndRefusesRepetitionPenalty) {
  auto sp = specs(8, 0.8f);
  for (auto& s : sp) {
    s.max_new_tokens = 32;
    s.spec_ngram = 2;
  }
  EngineConfig cfg;
  const auto out = run(cfg, sp);
  for (size_t i = 0; i < sp.size(); ++i) EXPECT_EQ(static_cast<int32_t>(out[i].size()), 32) << i;
  auto eng = Engine::create(*model_, cfg, pool_);
  ASSERT_TRUE(eng.ok());
  RequestSpec bad = sp[0];
  bad.sampling.repeat_penalty = 1.2f;
  auto r = (*eng)->add_request(bad);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("repetition penalty"), std::string::npos);
}

INSTANTIATE_TEST_SUITE_P(, EngineTest,
                         ::testing::Values(ModelCase{"stories260K", "models/stories260K/stories260K.gguf"},
                                           ModelCase{"TinyStories656K",
                                                     "models/tinystories-656k/TinyStories-656K-Q8_0.gguf"}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
}  // namespace llmopt
