// KvManager: allocation, prefix hits, copy-on-write.
#include "runtime/kv/kv_manager.h"

#include <algorithm>

#include "core/check.h"

namespace llmopt {
namespace {
constexpr uint64_t kRootKey = 0x6c6c6d6f70740001ULL;  // parent key of a sequence's first block
}

KvManager::KvManager(int32_t n_blocks, int32_t block_size, bool prefix_caching)
    : pool_(n_blocks), block_size_(block_size), prefix_caching_(prefix_caching) {
  LLMOPT_CHECK(block_size > 0);
}

int32_t KvManager::cached_prefix_blocks(std::span<const int32_t> tokens) const {
  if (!prefix_caching_ || tokens.empty()) return 0;
  const int32_t max_blocks = (static_cast<int32_t>(tokens.size()) - 1) / block_size_;
  uint64_t parent = kRootKey;
  int32_t n = 0;
  for (; n < max_blocks; ++n) {
    auto block = tokens.subspan(static_cast<size_t>(n) * block_size_, static_cast<size_t>(block_size_));
    if (!pool_.peek(parent, block)) break;
    parent = BlockPool::chain_hash(parent, block);
  }
  return n;
}

int32_t KvManager::shared_in_range(const SeqKv& seq, int32_t from, int32_t to) const {
  if (to <= from) return 0;
  int32_t n = 0;
  const int32_t last = std::min<int32_t>((to - 1) / block_size_, static_cast<int32_t>(seq.table.size()) - 1);
  for (int32_t i = from / block_size_; i <= last; ++i) {
    if (pool_.refs(seq.table[static_cast<size_t>(i)]) > 1) ++n;
  }
  return n;
}

int32_t KvManager::blocks_needed(const SeqKv& seq, std::span<const int32_t> tokens, int32_t write_from,
                                 int32_t n_tokens) const {
  const int32_t want = (n_tokens + block_size_ - 1) / block_size_;
  int32_t have = static_cast<int32_t>(seq.table.size());
  int32_t revived = 0;
  if (seq.empty()) {
    // Hits are taken first: free ones leave the free list, all of them cover blocks.
    const int32_t hits = cached_prefix_blocks(tokens);
    uint64_t parent = kRootKey;
    for (int32_t i = 0; i < hits; ++i) {
      auto block = tokens.subspan(static_cast<size_t>(i) * block_size_, static_cast<size_t>(block_size_));
      const int32_t b = *pool_.peek(parent, block);
      if (pool_.refs(b) == 0) ++revived;
      parent = BlockPool::chain_hash(parent, block);
    }
    have = hits;
  }
  return revived + std::max(0, want - have) + shared_in_range(seq, write_from, n_tokens);
}

bool KvManager::allocate(SeqKv& seq, std::span<const int32_t> tokens, int32_t n_tokens) {
  if (blocks_needed(seq, tokens, n_tokens, n_tokens) > pool_.n_free()) return false;
  if (seq.empty()) {
    const int32_t hits = cached_prefix_blocks(tokens);
    uint64_t parent = kRootKey;
    for (int32_t i = 0; i < hits; ++i) {
      auto block = tokens.subspan(static_cast<size_t>(i) * block_size_, static_cast<size_t>(block_size_));
      const int32_t b = *pool_.lookup(parent, block);
      pool_.incref(b);
      seq.table.push_back(b);
      parent = BlockPool::chain_hash(parent, block);
      seq.keys.push_back(parent);
    }
    if (prefix_caching_) {
      // Statistics: the blocks that missed (lookup stops at the first miss).
      const int32_t max_blocks = (static_cast<int32_t>(tokens.size()) - 1) / block_size_;
      if (hits < max_blocks) ++pool_.stats().prefix_queries;
    }
    seq.n_cached_tokens = hits * block_size_;
  }
  const int32_t want = (n_tokens + block_size_ - 1) / block_size_;
  const int32_t have = static_cast<int32_t>(seq.table.size());
  if (want > have) LLMOPT_CHECK(pool_.alloc(want - have, seq.table));
  return true;
}

bool KvManager::make_writable(SeqKv& seq, int32_t from, int32_t to, std::vector<BlockCopy>& copies) {
  const int32_t n_shared = shared_in_range(seq, from, to);
  if (n_shared == 0) return true;
  if (n_shared > pool_.n_free()) return false;
  const int32_t last = std::min<int32_t>((to - 1) / block_size_, static_cast<int32_t>(seq.table.size()) - 1);
  for (int32_t i = from / block_size_; i <= last; ++i) {
    int32_t& b = seq.table[static_cast<size_t>(i)];
    if (pool_.refs(b) <= 1) continue;
    std::vector<int32_t> fresh;
    LLMOPT_CHECK(pool_.alloc(1, fresh));
    copies.push_back({b, fresh[0]});
    pool_.decref(b);
    b = fresh[0];
    ++pool_.stats().cow_copies;
    // A private copy is not in the cache: drop the keys from this block on (they are recomputed).
    if (static_cast<int32_t>(seq.keys.size()) > i) seq.keys.resize(static_cast<size_t>(i));
  }
  return true;
}

void KvManager::commit_computed(SeqKv& seq, std::span<const int32_t> tokens, int32_t n_computed) {
  if (!prefix_caching_) return;
  const int32_t full = std::min<int32_t>(n_computed / block_size_, static_cast<int32_t>(seq.table.size()));
  for (int32_t i = static_cast<int32_t>(seq.keys.size()); i < full; ++i) {
    const uint64_t parent = i == 0 ? kRootKey : seq.keys[static_cast<size_t>(i - 1)];
    auto block = tokens.subspan(static_cast<size_t>(i) * block_size_, static_cast<size_t>(block_size_));
    pool_.register_block(seq.table[static_cast<size_t>(i)], parent, block);
    seq.keys.push_back(BlockPool::chain_hash(parent, block));
  }
}

void KvManager::truncate(SeqKv& seq, int32_t n_tokens) {
  const size_t keep = static_cast<size_t>((n_tokens + block_size_ - 1) / block_size_);
  if (seq.table.size() <= keep) return;
  pool_.free(std::span<const int32_t>(seq.table).subspan(keep));
  seq.table.resize(keep);
  if (seq.keys.size() > keep) seq.keys.resize(keep);
}

void KvManager::fork(const SeqKv& src, SeqKv& dst) {
  LLMOPT_CHECK(dst.empty());
  for (int32_t b : src.table) pool_.incref(b);
  dst = src;
}

void KvManager::free(SeqKv& seq) {
  pool_.free(seq.table);
  seq.table.clear();
  seq.keys.clear();
}

}  // namespace llmopt
