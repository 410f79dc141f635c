// BlockPool and SeqBlocks.
#include "runtime/kv/block_pool.h"

#include "core/check.h"

namespace llmopt {

BlockPool::BlockPool(int32_t n_blocks) : n_blocks_(n_blocks), in_use_(static_cast<size_t>(n_blocks), 0) {
  LLMOPT_CHECK(n_blocks >= 0);
  free_.reserve(static_cast<size_t>(n_blocks));
  for (int32_t b = n_blocks - 1; b >= 0; --b) free_.push_back(b);
}

bool BlockPool::alloc(int32_t n, std::vector<int32_t>& out) {
  if (n < 0 || n > n_free()) return false;
  for (int32_t i = 0; i < n; ++i) {
    int32_t b = free_.back();
    free_.pop_back();
    in_use_[static_cast<size_t>(b)] = 1;
    out.push_back(b);
  }
  return true;
}

void BlockPool::free(const std::vector<int32_t>& blocks) {
  for (int32_t b : blocks) {
    LLMOPT_CHECK(b >= 0 && b < n_blocks_);
    LLMOPT_CHECK_MSG(in_use_[static_cast<size_t>(b)] == 1, "double free of a KV block");
    in_use_[static_cast<size_t>(b)] = 0;
    free_.push_back(b);
  }
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
