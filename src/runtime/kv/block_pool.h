// Block ownership for the KV cache: a pool of block ids with a free list, and per-sequence block
// tables that grow on demand. (The model's KvStore holds the memory; this decides who owns which
// block.) Running out of blocks is not an error: reserve() returns false and nothing changes.
#pragma once

#include <cstdint>
#include <vector>

namespace llmopt {

class BlockPool {
 public:
  explicit BlockPool(int32_t n_blocks);
  int32_t n_blocks() const { return n_blocks_; }
  int32_t n_free() const { return static_cast<int32_t>(free_.size()); }
  // Takes n blocks, appending their ids to `out`; false (and no change) if fewer are free.
  bool alloc(int32_t n, std::vector<int32_t>& out);
  void free(const std::vector<int32_t>& blocks);

 private:
  int32_t n_blocks_;
  std::vector<int32_t> free_;   // LIFO: recently freed blocks are reused first
  std::vector<uint8_t> in_use_;
};

// A sequence's view of the cache: its block table and how many token slots it has filled.
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

}  // namespace llmopt
