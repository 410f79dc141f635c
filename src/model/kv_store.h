// KvStore: the memory of the KV cache, as fixed-size blocks of `block_size` token slots per layer.
// Who owns which block is decided elsewhere (runtime/kv's BlockPool); a sequence addresses its
// tokens through a block table: token at position p lives in block table[p / block_size],
// slot p % block_size.
#pragma once

#include <cstdint>
#include <vector>

#include "core/check.h"

namespace llmopt {

class KvStore {
 public:
  // Layout per layer: K then V, each [n_blocks][block_size][kv_dim] f32.
  KvStore(int32_t n_layer, int32_t kv_dim, int32_t n_blocks, int32_t block_size);

  int32_t n_layer() const { return n_layer_; }
  int32_t kv_dim() const { return kv_dim_; }
  int32_t n_blocks() const { return n_blocks_; }
  int32_t block_size() const { return block_size_; }
  size_t bytes() const { return data_.size() * sizeof(float); }

  float* k(int32_t il, int32_t block, int32_t slot) { return data_.data() + offset(il, 0, block, slot); }
  float* v(int32_t il, int32_t block, int32_t slot) { return data_.data() + offset(il, 1, block, slot); }
  const float* k(int32_t il, int32_t block, int32_t slot) const { return data_.data() + offset(il, 0, block, slot); }
  const float* v(int32_t il, int32_t block, int32_t slot) const { return data_.data() + offset(il, 1, block, slot); }
  // Copies every layer's K and V of block src into block dst (copy-on-write).
  void copy_block(int32_t src, int32_t dst);

 private:
  size_t offset(int32_t il, int32_t kv, int32_t block, int32_t slot) const {
    LLMOPT_CHECK(il >= 0 && il < n_layer_ && block >= 0 && block < n_blocks_ && slot >= 0 && slot < block_size_);
    return ((((static_cast<size_t>(il) * 2 + kv) * n_blocks_ + block) * block_size_) + slot) * kv_dim_;
  }
  int32_t n_layer_, kv_dim_, n_blocks_, block_size_;
  std::vector<float> data_;
};

}  // namespace llmopt
