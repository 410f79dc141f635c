// Block pool: null block, ref counts, LRU free list, prefix cache (hits, revival, eviction order),
// and the per-sequence SeqBlocks.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "runtime/kv/block_pool.h"

namespace llmopt {
namespace {

TEST(BlockPoolTest, NullBlockIsNeverHandedOut) {
  BlockPool pool(5);
  EXPECT_EQ(pool.n_usable(), 4);
  std::vector<int32_t> a;
  ASSERT_TRUE(pool.alloc(4, a));
  EXPECT_EQ(std::set<int32_t>(a.begin(), a.end()), (std::set<int32_t>{1, 2, 3, 4}));
  EXPECT_EQ(pool.n_free(), 0);
  std::vector<int32_t> b;
  EXPECT_FALSE(pool.alloc(1, b));  // not enough: nothing changes
  EXPECT_TRUE(b.empty());
  pool.free(a);
  EXPECT_EQ(pool.n_free(), 4);
  EXPECT_EQ(pool.refs(BlockPool::kNullBlock), 1);
}

TEST(BlockPoolTest, FreeListIsLruAndTakesFromTheHead) {
  BlockPool pool(5);
  std::vector<int32_t> a;
  ASSERT_TRUE(pool.alloc(4, a));  // 1 2 3 4
  pool.decref(3);
  pool.decref(1);
  pool.decref(4);
  EXPECT_EQ(pool.free_list(), (std::vector<int32_t>{3, 1, 4}));
  std::vector<int32_t> b;
  ASSERT_TRUE(pool.alloc(1, b));
  EXPECT_EQ(b, std::vector<int32_t>{3});  // least recently freed first
  // A sequence's blocks are freed tail first, so its head blocks stay cached longest.
  BlockPool p2(5);
  std::vector<int32_t> s;
  ASSERT_TRUE(p2.alloc(4, s));
  p2.free(s);
  EXPECT_EQ(p2.free_list(), (std::vector<int32_t>{s[3], s[2], s[1], s[0]}));
}

TEST(BlockPoolTest, RefCountsShareAndRelease) {
  BlockPool pool(3);
  std::vector<int32_t> a;
  ASSERT_TRUE(pool.alloc(1, a));
  pool.incref(a[0]);
  EXPECT_EQ(pool.refs(a[0]), 2);
  pool.decref(a[0]);
  EXPECT_EQ(pool.n_free(), 1);  // still owned once
  pool.decref(a[0]);
  EXPECT_EQ(pool.n_free(), 2);
}

TEST(BlockPoolTest, PrefixCacheHitReviveAndLruEviction) {
  BlockPool pool(4);  // 3 usable
  const std::vector<int32_t> t1 = {1, 2, 3, 4}, t2 = {5, 6, 7, 8}, t3 = {9, 9, 9, 9};
  std::vector<int32_t> b;
  ASSERT_TRUE(pool.alloc(3, b));
  pool.register_block(b[0], 0, t1);
  pool.register_block(b[1], 0, t2);
  pool.register_block(b[2], 0, t3);
  EXPECT_EQ(pool.lookup(0, t1), b[0]);
  EXPECT_FALSE(pool.lookup(1, t1).has_value());             // other parent: a different prefix
  EXPECT_FALSE(pool.lookup(0, std::vector<int32_t>{1, 2, 3, 5}).has_value());
  pool.decref(b[1]);
  pool.decref(b[0]);
  pool.decref(b[2]);                                         // free order: b1, b0, b2
  EXPECT_EQ(pool.n_cached(), 3);
  // Revive b0 from the free list (a prefix hit).
  pool.incref(*pool.lookup(0, t1));
  EXPECT_EQ(pool.refs(b[0]), 1);
  EXPECT_EQ(pool.free_list(), (std::vector<int32_t>{b[1], b[2]}));
  // A fresh allocation evicts the least recently freed cached block: b1.
  std::vector<int32_t> c;
  ASSERT_TRUE(pool.alloc(1, c));
  EXPECT_EQ(c[0], b[1]);
  EXPECT_FALSE(pool.lookup(0, t2).has_value());
  EXPECT_TRUE(pool.lookup(0, t3).has_value());
  EXPECT_EQ(pool.stats().evictions, 1);
  EXPECT_FALSE(pool.is_registered(b[1]));
}

TEST(BlockPoolTest, SeqBlocksGrowByBlockAndRelease) {
  BlockPool pool(11);
  {
    SeqBlocks s(pool, 16);
    EXPECT_TRUE(s.reserve(1));
    EXPECT_EQ(s.table().size(), 1u);
    EXPECT_TRUE(s.reserve(16));
    EXPECT_EQ(s.table().size(), 1u);
    EXPECT_TRUE(s.reserve(17));
    EXPECT_EQ(s.table().size(), 2u);
    EXPECT_EQ(s.capacity(), 32);
    EXPECT_FALSE(s.reserve(16 * 11));
    EXPECT_EQ(s.table().size(), 2u);
  }
  EXPECT_EQ(pool.n_free(), 10);  // released by the destructor
}

TEST(BlockPoolTest, RandomizedNoBlockOwnedTwice) {
  BlockPool pool(65);
  std::mt19937 rng(1);
  std::vector<std::unique_ptr<SeqBlocks>> seqs;
  for (int step = 0; step < 5000; ++step) {
    if (seqs.empty() || rng() % 3 != 0) {
      auto s = std::make_unique<SeqBlocks>(pool, 16);
      if (s->reserve(static_cast<int32_t>(rng() % 100 + 1))) seqs.push_back(std::move(s));
    } else {
      seqs.erase(seqs.begin() + static_cast<long>(rng() % seqs.size()));
    }
    std::set<int32_t> owned;
    size_t total = 0;
    for (const auto& s : seqs) {
      total += s->table().size();
      owned.insert(s->table().begin(), s->table().end());
    }
    ASSERT_EQ(owned.size(), total);
    ASSERT_EQ(owned.count(BlockPool::kNullBlock), 0u);
    ASSERT_EQ(static_cast<int32_t>(total) + pool.n_free(), pool.n_usable());
  }
}

}  // namespace
}  // namespace llmopt
