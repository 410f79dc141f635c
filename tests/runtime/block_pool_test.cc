// Block pool and per-sequence block tables.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include "runtime/kv/block_pool.h"

namespace llmopt {
namespace {

TEST(BlockPoolTest, AllocFreeAndExhaustion) {
  BlockPool pool(4);
  std::vector<int32_t> a;
  EXPECT_TRUE(pool.alloc(3, a));
  EXPECT_EQ(pool.n_free(), 1);
  std::vector<int32_t> b;
  EXPECT_FALSE(pool.alloc(2, b));  // not enough: nothing changes
  EXPECT_TRUE(b.empty());
  EXPECT_EQ(pool.n_free(), 1);
  pool.free(a);
  EXPECT_EQ(pool.n_free(), 4);
}

TEST(BlockPoolTest, SeqBlocksGrowByBlockAndRelease) {
  BlockPool pool(10);
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
  BlockPool pool(64);
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
    for (auto& s : seqs) {
      for (int32_t b : s->table()) owned.insert(b);
      total += s->table().size();
    }
    ASSERT_EQ(owned.size(), total);
    ASSERT_EQ(static_cast<int32_t>(total) + pool.n_free(), 64);
  }
}

}  // namespace
}  // namespace llmopt
