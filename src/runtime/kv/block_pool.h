// Block ownership for the KV cache (the model's KvStore holds the memory; this decides who owns
// which block).
//
// - Block 0 is the reserved null block: never handed out, always zero in the store; block tables
//   may use it as padding.
// - Every other block has a reference count. A block with refs > 0 is owned (by one sequence, or
//   shared by several through the prefix cache or a fork). A block with refs == 0 sits in the free
//   list, which is LRU-ordered and O(1) for every operation (an intrusive doubly linked list):
//   blocks are taken from the head, freed blocks go to the tail.
// - Prefix caching: a *full* block can be registered under a hash chained from its parent block's
//   hash and its own tokens. A registered block keeps its contents when freed, so a later request
//   with the same prefix can take it back out of the free list ("revive") instead of recomputing.
//   Cached free blocks are evicted (hash dropped) in LRU order when a fresh block is needed. The
//   cache keeps each block's tokens and parent hash, so a 64-bit hash collision can never hand out
//   the wrong contents.
// Running out of blocks is not an error: allocation returns false and nothing changes.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

namespace llmopt {

struct BlockPoolStats {
  int64_t prefix_queries = 0;  // blocks looked up
  int64_t prefix_hits = 0;     // blocks found
  int64_t evictions = 0;       // cached free blocks whose contents were dropped for reuse
  int64_t cow_copies = 0;      // copy-on-write block copies
};

class BlockPool {
 public:
  static constexpr int32_t kNullBlock = 0;

  // n_blocks counts the null block too: n_blocks - 1 are usable.
  explicit BlockPool(int32_t n_blocks);
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  int32_t n_blocks() const { return n_blocks_; }
  int32_t n_usable() const { return n_blocks_ - 1; }
  // Blocks with refs == 0 (including cached ones that could be revived).
  int32_t n_free() const { return n_free_; }
  int32_t n_used() const { return n_usable() - n_free_; }
  int32_t refs(int32_t block) const;

  // Takes n fresh blocks (refs = 1) from the LRU head, appending their ids to `out`; cached blocks
  // taken this way lose their hash. False (and no change) if fewer than n are free.
  bool alloc(int32_t n, std::vector<int32_t>& out);
  // Adds a reference (sharing). A free block is revived out of the free list.
  void incref(int32_t block);
  // Drops a reference; at 0 the block goes to the free-list tail (keeping its hash, if any).
  void decref(int32_t block);
  // decref of each block, in reverse order (so a sequence's tail blocks are evicted first).
  void free(std::span<const int32_t> blocks);

  // ---- prefix cache ----
  static uint64_t chain_hash(uint64_t parent, std::span<const int32_t> tokens);
  // The block registered for (parent, tokens), if any; no side effects except statistics.
  std::optional<int32_t> lookup(uint64_t parent, std::span<const int32_t> tokens);
  // Same, without touching the statistics (for side-effect-free planning).
  std::optional<int32_t> peek(uint64_t parent, std::span<const int32_t> tokens) const;
  // Registers a full, owned block. If an equal block is already registered, nothing changes.
  void register_block(int32_t block, uint64_t parent, std::span<const int32_t> tokens);
  bool is_registered(int32_t block) const;
  int32_t n_cached() const { return static_cast<int32_t>(cache_.size()); }

  BlockPoolStats& stats() { return stats_; }
  const BlockPoolStats& stats() const { return stats_; }
  // The free list from head (next to be taken) to tail; for tests and invariant checks.
  std::vector<int32_t> free_list() const;

 private:
  struct Meta {
    int32_t refs = 0;
    int32_t prev = -1, next = -1;  // free-list links (-1: none)
    bool in_free = false;
    bool registered = false;
    uint64_t hash = 0;
    uint64_t parent = 0;
    std::vector<int32_t> tokens;  // the block's tokens while registered
  };
  void list_push_tail(int32_t b);
  void list_remove(int32_t b);
  void unregister(int32_t b);
  std::optional<int32_t> find(uint64_t parent, std::span<const int32_t> tokens) const;

  int32_t n_blocks_;
  int32_t n_free_ = 0;
  int32_t head_ = -1, tail_ = -1;
  std::vector<Meta> meta_;
  std::unordered_multimap<uint64_t, int32_t> cache_;  // hash -> block
  BlockPoolStats stats_;
};

// A sequence's view of the cache without prefix sharing: its block table, grown on demand.
// (Used by single-request paths: generate, perplexity, bench.)
class SeqBlocks {
 public:
  SeqBlocks(BlockPool& pool, int32_t block_size) : pool_(&pool), block_size_(block_size) {}
  ~SeqBlocks() { release(); }
  SeqBlocks(const SeqBlocks&) = delete;
  SeqBlocks& operator=(const SeqBlocks&) = delete;

  // Ensures capacity for n_tokens positions; false if the pool has too few free blocks.
  bool reserve(int32_t n_tokens);
  // Returns all blocks to the pool.
  void release();
  const std::vector<int32_t>& table() const { return table_; }
  int32_t capacity() const { return static_cast<int32_t>(table_.size()) * block_size_; }

 private:
  BlockPool* pool_;
  int32_t block_size_;
  std::vector<int32_t> table_;
};

// Number of blocks (including the null block) for n_tokens of capacity.
inline int32_t blocks_for_tokens(int32_t n_tokens, int32_t block_size) {
  return (n_tokens + block_size - 1) / block_size + 1;
}

}  // namespace llmopt
