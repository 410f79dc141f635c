// Engine: schedule -> forward -> sample -> update.
#include "runtime/engine.h"

#include <algorithm>

#include "core/check.h"
#include "core/mmap_file.h"
#include "runtime/spec/verifier.h"

namespace llmopt {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::kNone:
      return "none";
    case FinishReason::kEos:
      return "eos";
    case FinishReason::kStopToken:
      return "stop";
    case FinishReason::kLength:
      return "length";
    case FinishReason::kContext:
      return "context";
    case FinishReason::kAborted:
      return "aborted";
  }
  return "?";
}

Result<std::unique_ptr<Engine>> Engine::create(const Model& model, const EngineConfig& config,
                                               ThreadPool& pool) {
  const ModelConfig& mc = model.config();
  EngineConfig cfg = config;
  LLMOPT_RETURN_IF_ERROR(
      validate(SchedulerConfig{cfg.sched.max_batch_tokens, cfg.sched.max_running, cfg.sched.max_waiting,
                               cfg.sched.batching, KvLayout::kPaged, 0}));
  if (cfg.block_size <= 0 || cfg.block_size > 4096) return error("KV block size must be in 1..4096 tokens");
  if (cfg.kv_mem_bytes < 0 || cfg.kv_tokens < 0) return error("the KV budget must not be negative");
  const int32_t n_ctx = cfg.n_ctx > 0 ? cfg.n_ctx : mc.n_ctx_train;
  if (n_ctx <= 1) return error("the context must be at least 2 tokens");
  if (mc.arch == Arch::kGpt2 && n_ctx > mc.n_ctx_train) {
    return error("context " + std::to_string(n_ctx) + " exceeds the model's " +
                 std::to_string(mc.n_ctx_train) + " learned positions");
  }
  const int64_t block_bytes =
      static_cast<int64_t>(KvStore::bytes_per_token(mc.n_layer, mc.kv_dim(), KvStore::default_type())) * cfg.block_size;
  int64_t usable = 0;
  if (cfg.kv_mem_bytes > 0) {
    usable = cfg.kv_mem_bytes / block_bytes - 1;  // the null block is part of the budget
  } else if (cfg.kv_tokens > 0) {
    usable = (cfg.kv_tokens + cfg.block_size - 1) / cfg.block_size;
  } else {
    usable = static_cast<int64_t>(cfg.sched.max_running) * ((n_ctx + cfg.block_size - 1) / cfg.block_size);
  }
  const int64_t ctx_blocks = (n_ctx + cfg.block_size - 1) / cfg.block_size;
  if (usable < ctx_blocks) {
    return error("the KV budget holds " + std::to_string(std::max<int64_t>(usable, 0) * cfg.block_size) +
                 " tokens, less than one full context of " + std::to_string(n_ctx) +
                 "; raise the KV memory or lower the context");
  }
  if (usable > (int64_t{1} << 30) / cfg.block_size) return error("the KV budget is unreasonably large");
  // The pool is committed in full when the engine starts (KvStore::prefault): refuse a budget the
  // machine cannot hold instead of being killed for it.
  const uint64_t kv_bytes = static_cast<uint64_t>(usable + 1) * static_cast<uint64_t>(block_bytes);
  const uint64_t avail = available_memory_bytes();
  if (avail > 0 && kv_bytes > avail) {
    return error("the KV budget of " + std::to_string(kv_bytes >> 20) + " MiB exceeds the available memory (" +
                 std::to_string(avail >> 20) + " MiB); lower --kv-mem / --kv-tokens or --max-seqs / the context");
  }
  if (cfg.sched.kv_layout == KvLayout::kContiguous) {
    cfg.sched.contiguous_tokens = n_ctx;
    cfg.prefix_caching = false;  // the baseline has no sharing
  }
  LLMOPT_RETURN_IF_ERROR(validate(cfg.sched));
  return std::unique_ptr<Engine>(new Engine(model, cfg, pool, n_ctx, static_cast<int32_t>(usable + 1)));
}

Engine::Engine(const Model& model, const EngineConfig& config, ThreadPool& pool, int32_t n_ctx,
               int32_t n_blocks)
    : model_(model), config_(config), pool_(pool), n_ctx_(n_ctx) {
  const ModelConfig& mc = model.config();
  store_ = std::make_unique<KvStore>(KvStore::for_model(mc, n_blocks, config.block_size));
  store_->prefault();  // the pool is handed out in LRU order: every block gets used sooner or later
  kv_ = std::make_unique<KvManager>(n_blocks, config.block_size, config.prefix_caching);
  sched_ = std::make_unique<Scheduler>(config.sched, *kv_);
  metrics_.kv_blocks_total = kv_->pool().n_usable();
  metrics_.kv_blocks_free = kv_->pool().n_free();
}

Result<int64_t> Engine::add_request(RequestSpec spec, EventCallback on_event) {
  const ModelConfig& mc = model_.config();
  auto reject = [&](std::string msg) -> Result<int64_t> {
    ++metrics_.requests_rejected;
    return error(std::move(msg));
  };
  if (spec.prompt.empty()) return reject("the prompt is empty (no tokens to start from)");
  for (int32_t t : spec.prompt) {
    if (t < 0 || t >= mc.n_vocab) return reject("prompt token id " + std::to_string(t) + " is out of range");
  }
  const int32_t n_prompt = static_cast<int32_t>(spec.prompt.size());
  if (n_prompt >= n_ctx_) {
    return reject("the prompt is " + std::to_string(n_prompt) + " tokens, longer than the context (" +
                  std::to_string(n_ctx_) + " tokens, at least one must be left to generate)");
  }
  if (spec.max_new_tokens == 0) return reject("max_new_tokens must be positive (or negative for no limit)");
  if (Status st = validate_sampling(spec.sampling); !st.ok()) return reject(st.message());
  if (spec.spec_ngram < 0 || spec.spec_ngram > 16) return reject("spec_ngram must be in 0..16");
  const bool speculative = spec.spec_ngram > 0 || spec.spec_draft_model != nullptr;
  if (speculative && (spec.spec_k < 1 || spec.spec_k > 16)) return reject("spec_k must be in 1..16");
  if (speculative && spec.sampling.repeat_penalty != 1.0f) {
    return reject("speculative decoding does not support a repetition penalty");
  }

  auto slot = std::make_unique<Slot>();
  Request& r = slot->req;
  r.id = next_id_;
  r.tokens = spec.prompt;
  r.n_prompt = n_prompt;
  r.max_tokens =
      spec.max_new_tokens < 0 ? n_ctx_ : std::min<int64_t>(n_ctx_, int64_t{n_prompt} + spec.max_new_tokens);
  r.tokens.reserve(static_cast<size_t>(r.max_tokens));
  slot->sampler = make_sampler_chain(spec.sampling);
  for (int32_t t : spec.prompt) slot->sampler->accept(t);
  slot->on_event = std::move(on_event);
  if (spec.spec_draft_model) {
    if (Status st = check_same_vocab(model_, *spec.spec_draft_model); !st.ok()) return reject(st.message());
    slot->drafter = std::make_unique<ModelDrafter>(spec.spec_draft_model, n_ctx_, spec.sampling.seed ^ 0x5bd1e995u,
                                                   pool_);
    slot->spec_rng = std::make_unique<SpecRng>(spec.sampling.seed);
  } else if (spec.spec_ngram > 0) {
    slot->drafter = std::make_unique<NgramDrafter>(spec.spec_ngram, mc.n_vocab);
    slot->spec_rng = std::make_unique<SpecRng>(spec.sampling.seed);
  }
  slot->t_arrival = slot->t_last = Clock::now();
  slot->spec = std::move(spec);
  if (Status st = sched_->add(&r); !st.ok()) return reject(st.message());
  ++next_id_;
  ++metrics_.requests_added;
  metrics_.prompt_tokens += n_prompt;
  metrics_.waiting = sched_->n_waiting();
  const int64_t id = r.id;
  slots_.emplace(id, std::move(slot));
  return id;
}

bool Engine::abort(int64_t id) {
  auto it = slots_.find(id);
  if (it == slots_.end()) return false;
  Slot& s = *it->second;
  sched_->remove(&s.req);
  ++metrics_.requests_aborted;
  TokenEvent ev;
  ev.id = id;
  ev.finished = true;
  ev.reason = FinishReason::kAborted;
  EventCallback cb = std::move(s.on_event);
  slots_.erase(it);
  if (cb) cb(ev);
  update_gauges(0.0);
  return true;
}

FinishReason Engine::check_finished(const Slot& s, int32_t token) const {
  const Request& r = s.req;
  if (!s.spec.ignore_eos && model_.has_tokenizer() && token == model_.tokenizer().eos())
    return FinishReason::kEos;
  if (std::find(s.spec.stop_tokens.begin(), s.spec.stop_tokens.end(), token) != s.spec.stop_tokens.end()) {
    return FinishReason::kStopToken;
  }
  if (r.n_tokens() >= r.max_tokens) {
    const bool by_length = s.spec.max_new_tokens >= 0 && r.n_output() >= s.spec.max_new_tokens;
    return by_length ? FinishReason::kLength : FinishReason::kContext;
  }
  return FinishReason::kNone;
}

StepStats Engine::step() {
  const auto t0 = Clock::now();
  StepStats st;
  const std::vector<Request*> drafted = draft_speculative();
  ScheduleOutput out = sched_->schedule();
  trim_unscheduled_drafts(drafted, out);
  st.n_preempted = static_cast<int32_t>(out.preempted.size());
  metrics_.preemptions += st.n_preempted;
  if (out.empty()) {
    update_gauges(0.0);
    return st;
  }

  for (const BlockCopy& c : out.copies) store_->copy_block(c.src, c.dst);
  inputs_.resize(out.chunks.size());
  for (size_t i = 0; i < out.chunks.size(); ++i) {
    const ScheduledChunk& c = out.chunks[i];
    SeqInput& in = inputs_[i];
    in.tokens = std::span<const int32_t>(c.req->tokens)
                    .subspan(static_cast<size_t>(c.pos0), static_cast<size_t>(c.n_tokens));
    in.pos0 = c.pos0;
    in.block_table = c.req->kv.table;
    in.logits = !c.sample ? LogitsMode::kNone : c.req->n_draft > 0 ? LogitsMode::kAll : LogitsMode::kLast;
  }
  model_.forward(inputs_, *store_, fwd_, pool_);
  sched_->on_computed(out);
  st.n_seqs = static_cast<int32_t>(out.chunks.size());
  st.n_tokens = out.n_tokens;
  metrics_.computed_tokens += out.n_tokens;
  metrics_.tokens_per_step.observe(out.n_tokens);

  const int32_t n_vocab = model_.config().n_vocab;
  // Plain sampling (no drafts to verify, no logits callback) of every chunk at once, spread over the
  // pool: each request has its own sampler chain, so they are independent; accept() and the stop
  // checks stay in order below.
  sampled_.assign(out.chunks.size(), -1);
  auto plain = [&](size_t i) {
    const ScheduledChunk& c = out.chunks[i];
    return c.sample && c.req->n_draft == 0 && !slots_.at(c.req->id)->spec.on_logits;
  };
  std::vector<size_t>& todo = sample_todo_;
  todo.clear();
  for (size_t i = 0; i < out.chunks.size(); ++i) {
    if (plain(i)) todo.push_back(i);
  }
  auto sample_range = [&](int64_t begin, int64_t end, int) {
    for (int64_t x = begin; x < end; ++x) {
      const size_t i = todo[static_cast<size_t>(x)];
      const float* logits = fwd_.logits.data() + fwd_.row_offset[i] * n_vocab;
      sampled_[i] = slots_.at(out.chunks[i].req->id)->sampler->sample(logits, n_vocab);
    }
  };
  if (todo.size() >= 4) {
    pool_.parallel_for(static_cast<int64_t>(todo.size()), sample_range);
  } else {
    sample_range(0, static_cast<int64_t>(todo.size()), 0);
  }
  const auto now = Clock::now();
  std::vector<int64_t> done;
  for (size_t i = 0; i < out.chunks.size(); ++i) {
    const ScheduledChunk& c = out.chunks[i];
    Request& r = *c.req;
    // Prefix-cache statistics, once per request: at its first chunk.
    if (c.pos0 == r.n_cached_tokens && r.n_preemptions == 0 && r.n_output() == 0) {
      metrics_.prefix_query_tokens += r.n_prompt;
      metrics_.prefix_hit_tokens += r.n_cached_tokens;
    }
    if (!c.sample) continue;
    Slot& s = *slots_.at(r.id);
    std::vector<int32_t> tokens;
    if (r.n_draft > 0) {
      tokens = verify_drafts(s, r, c, i);
    } else {
      if (sampled_[i] >= 0) {
        tokens.push_back(sampled_[i]);
      } else {
        const float* logits = fwd_.logits.data() + fwd_.row_offset[i] * n_vocab;
        if (s.spec.on_logits) s.spec.on_logits(logits, n_vocab);
        tokens.push_back(s.sampler->sample(logits, n_vocab));
      }
      s.sampler->accept(tokens.back());
    }
    for (int32_t token : tokens) {
      if (emit(s, r, token, now, st)) {
        done.push_back(r.id);
        break;
      }
    }
  }
  for (int64_t id : done) slots_.erase(id);
  st.seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  ++metrics_.steps;
  update_gauges(st.seconds);
  return st;
}

std::vector<Request*> Engine::draft_speculative() {
  std::vector<Request*> drafted;
  for (Request* r : sched_->running()) {
    Slot& s = *slots_.at(r->id);
    if (!s.drafter || r->n_draft != 0 || r->n_uncomputed() != 1) continue;
    // Accepting all k drafts adds k + 1 tokens: stay within the request's limit.
    const int32_t k = std::min(s.spec.spec_k, r->max_tokens - r->n_tokens() - 1);
    if (k <= 0) continue;
    s.drafter->propose(r->tokens, k, s.spec.sampling, s.proposal);
    if (s.proposal.tokens.empty()) continue;
    r->tokens.insert(r->tokens.end(), s.proposal.tokens.begin(), s.proposal.tokens.end());
    r->n_draft = static_cast<int32_t>(s.proposal.tokens.size());
    drafted.push_back(r);
  }
  return drafted;
}

void Engine::trim_unscheduled_drafts(const std::vector<Request*>& drafted, ScheduleOutput& out) {
  for (Request* r : drafted) {
    ScheduledChunk* chunk = nullptr;
    for (ScheduledChunk& c : out.chunks) {
      if (c.req == r) chunk = &c;
    }
    if (chunk == nullptr) {  // not scheduled this step (budget) or preempted: drafts are dropped
      r->tokens.resize(r->tokens.size() - static_cast<size_t>(r->n_draft));
      r->n_draft = 0;
      continue;
    }
    // The chunk starts at the last real token; a short budget may cut off some drafts.
    const int32_t end = chunk->pos0 + chunk->n_tokens;
    const int32_t cut = r->n_tokens() - end;
    LLMOPT_CHECK(cut >= 0 && cut <= r->n_draft);
    r->tokens.resize(static_cast<size_t>(end));
    r->n_draft -= cut;
    chunk->sample = true;
  }
}

std::vector<int32_t> Engine::verify_drafts(Slot& s, Request& r, const ScheduledChunk& c, size_t chunk_index) {
  const int32_t n_vocab = model_.config().n_vocab;
  const int32_t m = r.n_draft;
  const int32_t n_real = r.n_tokens() - m;  // tokens before the drafts
  const std::vector<int32_t> drafts(r.tokens.end() - m, r.tokens.end());
  // The chunk's last m + 1 rows: after the last real token, then after each draft.
  const float* rows = fwd_.logits.data() + (fwd_.row_offset[chunk_index] + c.n_tokens - (m + 1)) * n_vocab;
  Verdict v;
  if (s.spec.sampling.temperature <= 0.0f) {
    std::vector<int32_t> argmax(static_cast<size_t>(m) + 1);
    for (int32_t j = 0; j <= m; ++j) {
      const float* row = rows + static_cast<size_t>(j) * n_vocab;
      argmax[static_cast<size_t>(j)] = static_cast<int32_t>(std::max_element(row, row + n_vocab) - row);
    }
    v = verify_greedy(drafts, argmax);
  } else {
    if (spec_p_.size() < static_cast<size_t>(m) + 1) spec_p_.resize(static_cast<size_t>(m) + 1);
    std::vector<const TokenDistribution*> p, q;
    for (int32_t j = 0; j <= m; ++j) {
      spec_p_[static_cast<size_t>(j)].from_logits(rows + static_cast<size_t>(j) * n_vocab, n_vocab, s.spec.sampling);
      p.push_back(&spec_p_[static_cast<size_t>(j)]);
      if (j < m) q.push_back(&s.proposal.q[static_cast<size_t>(j)]);
    }
    v = verify_sampled(drafts, p, q, *s.spec_rng);
  }
  metrics_.spec_drafted_tokens += m;
  metrics_.spec_accepted_tokens += v.n_accepted;
  // Roll back: K/V stay valid through the accepted drafts; later blocks go back to the pool.
  r.tokens.resize(static_cast<size_t>(n_real));
  r.n_draft = 0;
  r.n_computed = n_real + v.n_accepted;
  kv_->truncate(r.kv, r.n_computed + 1);
  s.drafter->rollback(n_real + v.n_accepted);
  std::vector<int32_t> out(drafts.begin(), drafts.begin() + v.n_accepted);
  out.push_back(v.next);
  // Tokens are appended by emit(); the accepted drafts' K/V are already computed.
  return out;
}

bool Engine::emit(Slot& s, Request& r, int32_t token, Clock::time_point now, StepStats& st) {
  r.tokens.push_back(token);
  kv_->commit_computed(r.kv, r.tokens, std::min(r.n_computed, r.n_tokens()));
  ++st.n_sampled;
  ++metrics_.generated_tokens;
  const double since_last = std::chrono::duration<double>(now - s.t_last).count();
  if (r.n_output() == 1) {
    metrics_.ttft_seconds.observe(since_last);
  } else {
    metrics_.itl_seconds.observe(since_last);
  }
  s.t_last = now;
  TokenEvent ev;
  ev.id = r.id;
  ev.token = token;
  ev.index = r.n_output() - 1;
  ev.reason = check_finished(s, token);
  ev.finished = ev.reason != FinishReason::kNone;
  if (ev.finished) {
    sched_->finish(&r);
    ++metrics_.requests_finished;
    metrics_.e2e_seconds.observe(std::chrono::duration<double>(now - s.t_arrival).count());
    ++st.n_finished;
  }
  if (s.on_event) s.on_event(ev);
  return ev.finished;
}

void Engine::update_gauges(double step_seconds) {
  metrics_.running = sched_->n_running();
  metrics_.waiting = sched_->n_waiting();
  metrics_.kv_blocks_free = kv_->pool().n_free();
  metrics_.kv_blocks_used = kv_->pool().n_used();
  if (step_seconds <= 0.0) return;
  // Real tokens: each owned block counted once, filled up to the furthest computed position of the
  // sequences sharing it. Reserved: every owned block's slots.
  const int32_t bs = kv_->block_size();
  std::vector<int32_t> fill(static_cast<size_t>(kv_->pool().n_blocks()), 0);
  int64_t real = 0;
  for (const Request* r : sched_->running()) {
    for (size_t b = 0; b < r->kv.table.size(); ++b) {
      const int32_t in_block = std::clamp<int32_t>(r->n_computed - static_cast<int32_t>(b) * bs, 0, bs);
      int32_t& f = fill[static_cast<size_t>(r->kv.table[b])];
      if (in_block > f) {
        real += in_block - f;
        f = in_block;
      }
    }
  }
  const int64_t reserved = static_cast<int64_t>(kv_->pool().n_used()) * bs;
  metrics_.kv_real_token_seconds += static_cast<double>(real) * step_seconds;
  metrics_.kv_reserved_token_seconds += static_cast<double>(reserved) * step_seconds;
}

}  // namespace llmopt
