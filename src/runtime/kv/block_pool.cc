// BlockPool (ref counts, LRU free list, prefix cache) and SeqBlocks.
#include "runtime/kv/block_pool.h"

#include <algorithm>

#include "core/check.h"

namespace llmopt {

BlockPool::BlockPool(int32_t n_blocks)
    : n_blocks_(n_blocks), meta_(static_cast<size_t>(std::max(n_blocks, 1))) {
  LLMOPT_CHECK_MSG(n_blocks >= 1, "a block pool needs at least the null block");
  meta_[kNullBlock].refs = 1;  // pinned forever
  for (int32_t b = 1; b < n_blocks; ++b) list_push_tail(b);
}

int32_t BlockPool::refs(int32_t block) const {
  LLMOPT_CHECK(block >= 0 && block < n_blocks_);
  return meta_[static_cast<size_t>(block)].refs;
}

void BlockPool::list_push_tail(int32_t b) {
  Meta& m = meta_[static_cast<size_t>(b)];
  LLMOPT_CHECK(!m.in_free);
  m.in_free = true;
  m.prev = tail_;
  m.next = -1;
  if (tail_ >= 0)
    meta_[static_cast<size_t>(tail_)].next = b;
  else
    head_ = b;
  tail_ = b;
  ++n_free_;
}

void BlockPool::list_remove(int32_t b) {
  Meta& m = meta_[static_cast<size_t>(b)];
  LLMOPT_CHECK(m.in_free);
  if (m.prev >= 0)
    meta_[static_cast<size_t>(m.prev)].next = m.next;
  else
    head_ = m.next;
  if (m.next >= 0)
    meta_[static_cast<size_t>(m.next)].prev = m.prev;
  else
    tail_ = m.prev;
  m.prev = m.next = -1;
  m.in_free = false;
  --n_free_;
}

bool BlockPool::alloc(int32_t n, std::vector<int32_t>& out) {
  if (n < 0 || n > n_free_) return false;
  for (int32_t i = 0; i < n; ++i) {
    const int32_t b = head_;
    list_remove(b);
    Meta& m = meta_[static_cast<size_t>(b)];
    if (m.registered) {
      unregister(b);
      ++stats_.evictions;
    }
    m.refs = 1;
    out.push_back(b);
  }
  return true;
}

void BlockPool::incref(int32_t block) {
  LLMOPT_CHECK(block > 0 && block < n_blocks_);
  Meta& m = meta_[static_cast<size_t>(block)];
  if (m.refs == 0) list_remove(block);
  ++m.refs;
}

void BlockPool::decref(int32_t block) {
  LLMOPT_CHECK(block > 0 && block < n_blocks_);
  Meta& m = meta_[static_cast<size_t>(block)];
  LLMOPT_CHECK_MSG(m.refs > 0, "double free of a KV block");
  if (--m.refs == 0) list_push_tail(block);
}

void BlockPool::free(std::span<const int32_t> blocks) {
  for (size_t i = blocks.size(); i-- > 0;) decref(blocks[i]);
}

uint64_t BlockPool::chain_hash(uint64_t parent, std::span<const int32_t> tokens) {
  // splitmix64-style mixing of the parent hash and each token.
  auto mix = [](uint64_t x) {
    x ^= x >> 30;
    x *= 0xbf58476d1ce4e5b9ULL;
    x ^= x >> 27;
    x *= 0x94d049bb133111ebULL;
    x ^= x >> 31;
    return x;
  };
  uint64_t h = mix(parent + 0x9e3779b97f4a7c15ULL);
  for (int32_t t : tokens)
    h = mix(h ^ (static_cast<uint64_t>(static_cast<uint32_t>(t)) + 0x9e3779b97f4a7c15ULL));
  return h;
}

std::optional<int32_t> BlockPool::find(uint64_t parent, std::span<const int32_t> tokens) const {
  auto [lo, hi] = cache_.equal_range(chain_hash(parent, tokens));
  for (auto it = lo; it != hi; ++it) {
    const Meta& m = meta_[static_cast<size_t>(it->second)];
    if (m.parent == parent && std::equal(m.tokens.begin(), m.tokens.end(), tokens.begin(), tokens.end())) {
      return it->second;
    }
  }
  return std::nullopt;
}

std::optional<int32_t> BlockPool::peek(uint64_t parent, std::span<const int32_t> tokens) const {
  return find(parent, tokens);
}

std::optional<int32_t> BlockPool::lookup(uint64_t parent, std::span<const int32_t> tokens) {
  ++stats_.prefix_queries;
  auto b = find(parent, tokens);
  if (b) ++stats_.prefix_hits;
  return b;
}

void BlockPool::register_block(int32_t block, uint64_t parent, std::span<const int32_t> tokens) {
  LLMOPT_CHECK(block > 0 && block < n_blocks_);
  Meta& m = meta_[static_cast<size_t>(block)];
  LLMOPT_CHECK_MSG(m.refs > 0, "only an owned block can be registered in the prefix cache");
  if (m.registered || find(parent, tokens)) return;
  m.registered = true;
  m.parent = parent;
  m.hash = chain_hash(parent, tokens);
  m.tokens.assign(tokens.begin(), tokens.end());
  cache_.emplace(m.hash, block);
}

bool BlockPool::is_registered(int32_t block) const {
  LLMOPT_CHECK(block >= 0 && block < n_blocks_);
  return meta_[static_cast<size_t>(block)].registered;
}

void BlockPool::unregister(int32_t b) {
  Meta& m = meta_[static_cast<size_t>(b)];
  auto [lo, hi] = cache_.equal_range(m.hash);
  for (auto it = lo; it != hi; ++it) {
    if (it->second == b) {
      cache_.erase(it);
      break;
    }
  }
  m.registered = false;
  m.tokens.clear();
}

std::vector<int32_t> BlockPool::free_list() const {
  std::vector<int32_t> out;
  for (int32_t b = head_; b >= 0; b = meta_[static_cast<size_t>(b)].next) out.push_back(b);
  return out;
}

bool SeqBlocks::reserve(int32_t n_tokens) {
  const int32_t need = (n_tokens + block_size_ - 1) / block_size_;
  const int32_t have = static_cast<int32_t>(table_.size());
  if (need <= have) return true;
  return pool_->alloc(need - have, table_);
}

void SeqBlocks::release() {
  if (pool_ != nullptr && !table_.empty()) pool_->free(table_);
  table_.clear();
}

}  // namespace llmopt
