// KvManager and Scheduler without a model: prefix sharing, planning without side effects,
// copy-on-write, chunked prefill, decode-first order, preemption and resumption, static batching,
// contiguous reservation, the bounded queue, and a randomized invariant check.
#include <gtest/gtest.h>

#include <cstdio>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <set>

#include "runtime/kv/kv_manager.h"
#include "runtime/sched/scheduler.h"

namespace llmopt {
namespace {

std::vector<int32_t> iota_tokens(int32_t n, int32_t start = 0) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  std::iota(t.begin(), t.end(), start);
  return t;
}

TEST(KvManagerTest, PrefixBlocksAreSharedAndLastTokenAlwaysComputed) {
  KvManager kv(20, 4, true);
  const auto toks = iota_tokens(10);  // 2 full blocks + 2 tokens
  SeqKv a;
  ASSERT_TRUE(kv.allocate(a, toks, 10));
  EXPECT_EQ(a.table.size(), 3u);
  EXPECT_EQ(a.n_cached_tokens, 0);
  kv.commit_computed(a, toks, 10);
  EXPECT_EQ(kv.pool().n_cached(), 2);

  // Same 8-token prefix, different tail: two blocks hit.
  auto other = toks;
  other[9] = 99;
  EXPECT_EQ(kv.cached_prefix_blocks(other), 2);
  // Exactly the cached 8 tokens: only 1 block, so the last token is still computed.
  EXPECT_EQ(kv.cached_prefix_blocks(std::span<const int32_t>(toks).first(8)), 1);
  // A different first block: no hit even though the second block's tokens match.
  auto diff = toks;
  diff[0] = 77;
  EXPECT_EQ(kv.cached_prefix_blocks(diff), 0);

  SeqKv b;
  const int32_t free_before = kv.pool().n_free();
  ASSERT_TRUE(kv.allocate(b, other, 10));
  EXPECT_EQ(b.n_cached_tokens, 8);
  EXPECT_EQ(b.table[0], a.table[0]);
  EXPECT_EQ(b.table[1], a.table[1]);
  EXPECT_NE(b.table[2], a.table[2]);
  EXPECT_EQ(kv.pool().refs(a.table[0]), 2);
  EXPECT_EQ(kv.pool().n_free(), free_before - 1);
  kv.free(a);
  kv.free(b);
  EXPECT_EQ(kv.pool().n_free(), kv.pool().n_usable());
}

TEST(KvManagerTest, FreedPrefixIsRevivedAndPlanningHasNoSideEffects) {
  KvManager kv(6, 4, true);  // 5 usable blocks
  const auto toks = iota_tokens(12);
  SeqKv a;
  ASSERT_TRUE(kv.allocate(a, toks, 12));
  kv.commit_computed(a, toks, 12);
  kv.free(a);
  EXPECT_EQ(kv.pool().n_free(), 5);
  EXPECT_EQ(kv.pool().n_cached(), 3);

  SeqKv b;
  const auto stats = kv.pool().stats();
  // 2 cached blocks come back from the free list (13 tokens: 3 full blocks, hits capped at 3).
  const auto longer = iota_tokens(13);
  EXPECT_EQ(kv.cached_prefix_blocks(longer), 3);
  EXPECT_EQ(kv.blocks_needed(b, longer, 12, 13), 4);  // 3 revived + 1 fresh
  EXPECT_TRUE(kv.can_allocate(b, longer, 12, 13));
  EXPECT_EQ(kv.pool().n_free(), 5);  // unchanged by planning
  EXPECT_EQ(kv.pool().stats().prefix_queries, stats.prefix_queries);
  ASSERT_TRUE(kv.allocate(b, longer, 13));
  EXPECT_EQ(b.n_cached_tokens, 12);
  EXPECT_EQ(kv.pool().n_free(), 1);
  EXPECT_EQ(kv.pool().stats().prefix_hits, stats.prefix_hits + 3);
  // Too big for what is left: refused, nothing changes.
  SeqKv c;
  EXPECT_FALSE(kv.allocate(c, iota_tokens(9, 500), 9));
  EXPECT_TRUE(c.empty());
  EXPECT_EQ(kv.pool().n_free(), 1);
}

TEST(KvManagerTest, CopyOnWriteWhenASharedBlockIsWritten) {
  KvManager kv(10, 4, false);
  const auto toks = iota_tokens(6);
  SeqKv a;
  ASSERT_TRUE(kv.allocate(a, toks, 6));
  SeqKv b;
  kv.fork(a, b);  // b shares both blocks, including the partial one
  EXPECT_EQ(kv.pool().refs(a.table[1]), 2);
  // b appends token 6 (in block 1, which is shared): planning counts one copy.
  EXPECT_EQ(kv.blocks_needed(b, toks, 6, 7), 1);
  std::vector<BlockCopy> copies;
  ASSERT_TRUE(kv.make_writable(b, 6, 7, copies));
  ASSERT_EQ(copies.size(), 1u);
  EXPECT_EQ(copies[0].src, a.table[1]);
  EXPECT_EQ(copies[0].dst, b.table[1]);
  EXPECT_NE(a.table[1], b.table[1]);
  EXPECT_EQ(b.table[0], a.table[0]);  // block 0 is not written: still shared
  EXPECT_EQ(kv.pool().refs(a.table[1]), 1);
  EXPECT_EQ(kv.pool().stats().cow_copies, 1);
  copies.clear();
  ASSERT_TRUE(kv.make_writable(a, 6, 7, copies));  // a's block is private now: no copy
  EXPECT_TRUE(copies.empty());
}

// ---- scheduler ------------------------------------------------------------------------------

struct Sim {
  explicit Sim(SchedulerConfig c, int32_t n_blocks, int32_t bs, bool caching = true)
      : kv(n_blocks, bs, caching), sched(c, kv) {}
  Request* add(std::vector<int32_t> prompt, int32_t max_new) {
    auto r = std::make_unique<Request>();
    r->id = static_cast<int64_t>(reqs.size()) + 1;
    r->n_prompt = static_cast<int32_t>(prompt.size());
    r->tokens = std::move(prompt);
    r->max_tokens = r->n_prompt + max_new;
    Request* p = r.get();
    reqs.push_back(std::move(r));
    EXPECT_TRUE(sched.add(p).ok());
    return p;
  }
  // One engine step without a model: sampled tokens are a function of the sequence so far.
  ScheduleOutput step() {
    ScheduleOutput out = sched.schedule();
    sched.on_computed(out);
    for (const auto& c : out.chunks) {
      if (!c.sample) continue;
      Request* r = c.req;
      r->tokens.push_back(static_cast<int32_t>((r->tokens.back() * 31 + r->n_tokens()) % 1000));
      if (r->n_tokens() >= r->max_tokens) sched.finish(r);
    }
    return out;
  }
  KvManager kv;
  Scheduler sched;
  std::vector<std::unique_ptr<Request>> reqs;
};

TEST(SchedulerTest, ChunkedPrefillAndDecodesFirst) {
  SchedulerConfig c;
  c.max_batch_tokens = 32;
  Sim s(c, 64, 16);
  Request* a = s.add(iota_tokens(100), 3);
  auto o1 = s.step();
  ASSERT_EQ(o1.chunks.size(), 1u);
  EXPECT_EQ(o1.chunks[0].n_tokens, 32);
  EXPECT_FALSE(o1.chunks[0].sample);
  s.step();
  s.step();
  auto o4 = s.step();  // 100 = 32 + 32 + 32 + 4
  EXPECT_EQ(o4.chunks[0].n_tokens, 4);
  EXPECT_TRUE(o4.chunks[0].sample);
  EXPECT_EQ(a->n_output(), 1);
  // A new long prompt arrives: a's decode is scheduled first, the prompt takes the rest.
  Request* b = s.add(iota_tokens(50, 1000), 2);
  auto o5 = s.step();
  ASSERT_EQ(o5.chunks.size(), 2u);
  EXPECT_EQ(o5.chunks[0].req, a);
  EXPECT_EQ(o5.chunks[0].n_tokens, 1);
  EXPECT_EQ(o5.chunks[1].req, b);
  EXPECT_EQ(o5.chunks[1].n_tokens, 31);
  EXPECT_EQ(o5.n_tokens, 32);
}

TEST(SchedulerTest, RunningCapAndBoundedQueue) {
  SchedulerConfig c;
  c.max_running = 2;
  c.max_waiting = 3;
  Sim s(c, 64, 16);
  for (int i = 0; i < 3; ++i) s.add(iota_tokens(5, i * 10), 4);
  Request extra;
  extra.tokens = iota_tokens(5);
  extra.n_prompt = 5;
  extra.max_tokens = 9;
  Status st = s.sched.add(&extra);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("waiting queue is full"), std::string::npos) << st.message();
  auto o = s.step();
  EXPECT_EQ(o.chunks.size(), 2u);
  EXPECT_EQ(s.sched.n_running(), 2);
  EXPECT_EQ(s.sched.n_waiting(), 1);
}

TEST(SchedulerTest, PreemptsNewestAndResumesWithSameTokens) {
  SchedulerConfig c;
  c.max_batch_tokens = 64;
  Sim s(c, 7, 4, false);                       // 6 usable blocks of 4 tokens = 24 slots
  Request* a = s.add(iota_tokens(8, 0), 8);    // grows to 16 tokens = 4 blocks
  Request* b = s.add(iota_tokens(8, 100), 8);  // also 4 blocks: both cannot finish together
  std::vector<int32_t> b_tokens_at_preemption;
  bool preempted = false;
  for (int i = 0; i < 100 && (a->state != RequestState::kFinished || b->state != RequestState::kFinished);
       ++i) {
    const std::vector<int32_t> before = b->tokens;
    auto o = s.step();
    if (!o.preempted.empty()) {
      ASSERT_FALSE(preempted);
      preempted = true;
      EXPECT_EQ(o.preempted[0], b);  // the newest goes
      EXPECT_EQ(b->state, RequestState::kWaiting);
      EXPECT_EQ(b->n_computed, 0);
      EXPECT_TRUE(b->kv.empty());
      b_tokens_at_preemption = before;
    }
  }
  ASSERT_TRUE(preempted);
  EXPECT_EQ(a->state, RequestState::kFinished);
  EXPECT_EQ(b->state, RequestState::kFinished);
  EXPECT_EQ(b->n_preemptions, 1);
  // Recompute kept every token b had, and it finished its full length.
  EXPECT_TRUE(std::equal(b_tokens_at_preemption.begin(), b_tokens_at_preemption.end(), b->tokens.begin()));
  EXPECT_EQ(b->n_tokens(), 16);
  EXPECT_EQ(s.kv.pool().n_free(), s.kv.pool().n_usable());
}

TEST(SchedulerTest, StaticBatchingAdmitsOnlyWhenTheBatchIsDone) {
  SchedulerConfig c;
  c.batching = BatchingMode::kStatic;
  c.max_running = 2;
  Sim s(c, 64, 16);
  Request* a = s.add(iota_tokens(4), 1);
  Request* b = s.add(iota_tokens(4, 50), 6);
  Request* d = s.add(iota_tokens(4, 90), 1);
  s.step();
  EXPECT_EQ(a->state, RequestState::kFinished);
  for (int i = 0; i < 4; ++i) {
    s.step();
    EXPECT_EQ(d->state, RequestState::kWaiting);  // a's slot stays empty until b is done
  }
  s.step();
  EXPECT_EQ(b->state, RequestState::kFinished);
  s.step();
  EXPECT_EQ(d->state, RequestState::kFinished);
}

TEST(SchedulerTest, ContiguousReservesTheWholeContext) {
  SchedulerConfig c;
  c.kv_layout = KvLayout::kContiguous;
  c.contiguous_tokens = 64;
  Sim s(c, 10, 16, false);  // 9 usable blocks: two 4-block reservations fit, not three
  Request* a = s.add(iota_tokens(5), 2);
  Request* b = s.add(iota_tokens(5, 10), 2);
  Request* d = s.add(iota_tokens(5, 20), 2);
  s.step();
  EXPECT_EQ(a->kv.table.size(), 4u);
  EXPECT_EQ(b->kv.table.size(), 4u);
  EXPECT_EQ(d->state, RequestState::kWaiting);
}

TEST(SchedulerTest, PrefixHitsSkipComputedTokens) {
  SchedulerConfig c;
  Sim s(c, 64, 4);
  Request* a = s.add(iota_tokens(10), 1);
  s.step();
  EXPECT_EQ(a->state, RequestState::kFinished);
  auto p = iota_tokens(10);
  p.push_back(500);
  Request* b = s.add(p, 1);
  auto o = s.step();
  ASSERT_EQ(o.chunks.size(), 1u);
  EXPECT_EQ(o.chunks[0].pos0, 8);  // 2 cached blocks
  EXPECT_EQ(o.chunks[0].n_tokens, 3);
  EXPECT_EQ(b->n_cached_tokens, 8);
}

// Invariants over the pool and every live request: each block's ref count equals the number of
// tables holding it, free blocks are exactly those with no references, the null block is never in
// a table, and a block shared by several tables is a full registered block.
void check_invariants(const KvManager& kv, const std::vector<std::unique_ptr<Request>>& reqs) {
  const BlockPool& pool = kv.pool();
  std::map<int32_t, int32_t> holders;
  for (const auto& r : reqs) {
    if (r->state == RequestState::kFinished) {
      ASSERT_TRUE(r->kv.empty());
      continue;
    }
    std::set<int32_t> mine(r->kv.table.begin(), r->kv.table.end());
    ASSERT_EQ(mine.size(), r->kv.table.size()) << "a table holds a block twice";
    for (int32_t b : r->kv.table) ++holders[b];
  }
  const auto free_list = pool.free_list();
  std::set<int32_t> free_set(free_list.begin(), free_list.end());
  ASSERT_EQ(free_set.size(), free_list.size());
  ASSERT_EQ(static_cast<int32_t>(free_list.size()), pool.n_free());
  ASSERT_EQ(holders.count(BlockPool::kNullBlock), 0u);
  for (int32_t b = 1; b < pool.n_blocks(); ++b) {
    const int32_t h = holders.count(b) ? holders[b] : 0;
    ASSERT_EQ(pool.refs(b), h) << "block " << b;
    ASSERT_EQ(free_set.count(b) == 1, h == 0) << "block " << b;
    if (h > 1) {
      ASSERT_TRUE(pool.is_registered(b)) << "block " << b;
    }
  }
}

TEST(SchedulerTest, RandomizedTenThousandRequestsWithAbortsLeakNothing) {
  std::mt19937 rng(7);
  SchedulerConfig c;
  c.max_batch_tokens = 96;
  c.max_running = 12;
  c.max_waiting = 64;
  Sim s(c, 48, 8);  // tight: preemptions happen
  const std::vector<int32_t> shared = iota_tokens(24, 5000);
  int added = 0, refused = 0, aborted = 0;
  int steps = 0;
  while (added < 10000 || s.sched.n_running() + s.sched.n_waiting() > 0) {
    for (int k = 0; k < (rng() % 10 < 7 ? 1 : 0) && added < 10000; ++k) {
      std::vector<int32_t> p;
      if (rng() % 2) p = std::vector<int32_t>(shared.begin(), shared.begin() + static_cast<long>(rng() % 25));
      const int32_t extra = static_cast<int32_t>(rng() % 40) + 1;
      for (int32_t i = 0; i < extra; ++i) p.push_back(static_cast<int32_t>(rng() % 50));
      auto r = std::make_unique<Request>();
      r->id = added + 1;
      r->n_prompt = static_cast<int32_t>(p.size());
      r->tokens = std::move(p);
      r->max_tokens = r->n_prompt + static_cast<int32_t>(rng() % 30) + 1;
      if (s.sched.add(r.get()).ok()) {
        s.reqs.push_back(std::move(r));
      } else {
        ++refused;
      }
      ++added;
    }
    if (rng() % 5 == 0 && !s.reqs.empty()) {
      Request* victim = s.reqs[rng() % s.reqs.size()].get();
      if (victim->state != RequestState::kFinished) {
        ASSERT_TRUE(s.sched.remove(victim));
        ++aborted;
      }
    }
    s.step();
    ++steps;
    if (steps % 7 == 0) {
      ASSERT_NO_FATAL_FAILURE(check_invariants(s.kv, s.reqs));
    }
    // Drop finished requests now and then to keep the check fast.
    if (steps % 50 == 0) {
      std::erase_if(s.reqs, [](const auto& r) { return r->state == RequestState::kFinished; });
    }
    ASSERT_LT(steps, 200000) << "no progress";
  }
  ASSERT_NO_FATAL_FAILURE(check_invariants(s.kv, s.reqs));
  EXPECT_EQ(s.kv.pool().n_free(), s.kv.pool().n_usable());
  EXPECT_GT(aborted, 100);
  EXPECT_GT(s.sched.n_preemptions(), 10);
  EXPECT_GT(s.kv.pool().stats().prefix_hits, 100);
  EXPECT_LT(refused, 2000);  // most requests get in: the queue bound only trims bursts
  std::printf("steps %d, refused %d, aborted %d, preemptions %lld, prefix hits %lld, evictions %lld\n", steps,
              refused, aborted, static_cast<long long>(s.sched.n_preemptions()),
              static_cast<long long>(s.kv.pool().stats().prefix_hits),
              static_cast<long long>(s.kv.pool().stats().evictions));
}

}  // namespace
}  // namespace llmopt
