// KvManager: per-sequence block tables over a BlockPool, with prefix caching and copy-on-write.
//
// Planning is separate from committing: blocks_needed() / can_allocate() have no side effects, so
// the scheduler can ask "would this fit?" before changing anything; allocate(), make_writable(),
// commit_computed() and free() mutate.
//
// Prefix caching: block i of a sequence is keyed by hash(key of block i-1, tokens of block i), so a
// hit on block i implies the whole prefix matches. Only full blocks are shared, and a new
// sequence's hits stop one token short of its end so at least one token is always computed (the
// one whose logits are needed); hence a sequence never writes into a block it took from the cache.
// Blocks become shared only through the cache or fork(); writing into a shared block (refs > 1)
// first gives the writer a private copy (make_writable), whose contents the caller copies in the
// KV store before the forward pass.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "runtime/kv/block_pool.h"

namespace llmopt {

struct SeqKv {
  std::vector<int32_t> table;   // block ids covering positions [0, table.size() * block_size)
  std::vector<uint64_t> keys;   // chain hash of each leading full block already committed
  int32_t n_cached_tokens = 0;  // tokens taken from the prefix cache at the first allocation
  bool empty() const { return table.empty(); }
};

struct BlockCopy {
  int32_t src = 0;
  int32_t dst = 0;
};

class KvManager {
 public:
  KvManager(int32_t n_blocks, int32_t block_size, bool prefix_caching);

  int32_t block_size() const { return block_size_; }
  bool prefix_caching() const { return prefix_caching_; }
  BlockPool& pool() { return pool_; }
  const BlockPool& pool() const { return pool_; }

  // Leading full blocks of `tokens` present in the cache, at most (size - 1) / block_size.
  int32_t cached_prefix_blocks(std::span<const int32_t> tokens) const;
  // Free-list blocks that allocate(seq, tokens, n_tokens) followed by make_writable(seq, write_from,
  // n_tokens) would consume (cached hits that are currently free count too).
  int32_t blocks_needed(const SeqKv& seq, std::span<const int32_t> tokens, int32_t write_from,
                        int32_t n_tokens) const;
  bool can_allocate(const SeqKv& seq, std::span<const int32_t> tokens, int32_t write_from,
                    int32_t n_tokens) const {
    return blocks_needed(seq, tokens, write_from, n_tokens) <= pool_.n_free();
  }

  // Grows seq to cover n_tokens positions. An empty seq first takes its cached prefix (sets
  // seq.n_cached_tokens). False, with nothing changed, when the pool is short.
  bool allocate(SeqKv& seq, std::span<const int32_t> tokens, int32_t n_tokens);
  // Gives seq private copies of the shared blocks covering positions [from, to). The copies to make
  // in the store are appended to `copies`. False, with nothing changed, when the pool is short.
  bool make_writable(SeqKv& seq, int32_t from, int32_t to, std::vector<BlockCopy>& copies);
  // Tokens [0, n_computed) are now in the cache: registers the newly completed full blocks.
  void commit_computed(SeqKv& seq, std::span<const int32_t> tokens, int32_t n_computed);
  // Drops the blocks past the first n_tokens positions (speculative tokens that were rejected).
  void truncate(SeqKv& seq, int32_t n_tokens);
  // dst (empty) shares every block of src.
  void fork(const SeqKv& src, SeqKv& dst);
  void free(SeqKv& seq);

 private:
  int32_t shared_in_range(const SeqKv& seq, int32_t from, int32_t to) const;

  BlockPool pool_;
  int32_t block_size_;
  bool prefix_caching_;
};

}  // namespace llmopt
