// KvStore: the memory of the KV cache, as fixed-size blocks of `block_size` token slots per layer.
// Who owns which block is decided elsewhere (runtime/kv's BlockPool); a sequence addresses its
// tokens through a block table: token at position p lives in block table[p / block_size],
// slot p % block_size.
#pragma once

#include <cstdint>
#include <vector>

#include "core/check.h"
#include "core/dtype.h"
#include "core/huge_buffer.h"
#include "model/config.h"

namespace llmopt {

class KvStore {
 public:
  // Layout per layer: K then V, each [n_blocks][kv_dim / head_dim][block_size][head_dim] elements of
  // `type`: kF16 (the default, as llama.cpp's cache: half the memory and the memory traffic) or kF32.
  // One KV head's rows of a block are contiguous, so attention reads each (block, head) in one run.
  // head_dim 0 means kv_dim (token rows; one "head" of the whole width).
  KvStore(int32_t n_layer, int32_t kv_dim, int32_t n_blocks, int32_t block_size, DType type = default_type(),
          int32_t head_dim = 0);
  // The store a model's forward pass uses: its layers, KV width and head size.
  static KvStore for_model(const ModelConfig& cfg, int32_t n_blocks, int32_t block_size, DType type = default_type()) {
    return KvStore(cfg.n_layer, cfg.kv_dim(), n_blocks, block_size, type, cfg.head_dim);
  }

  int32_t n_layer() const { return n_layer_; }
  int32_t kv_dim() const { return kv_dim_; }
  int32_t n_blocks() const { return n_blocks_; }
  int32_t block_size() const { return block_size_; }
  int32_t head_dim() const { return head_dim_; }
  DType type() const { return type_; }
  size_t elem_bytes() const { return type_ == DType::kF16 ? 2 : 4; }
  size_t bytes() const { return data_.size(); }
  // Bytes one token slot takes over all layers (K and V).
  static size_t bytes_per_token(int32_t n_layer, int32_t kv_dim, DType type) {
    return static_cast<size_t>(n_layer) * 2 * kv_dim * (type == DType::kF16 ? 2 : 4);
  }

  // K (V) column `col` of slot `slot` of a block. Columns [col, col + n) with n <= head_dim(), inside
  // one head, are contiguous, and the same columns of the next slot follow head_dim() elements later;
  // slot 0, col 0 starts the block's memory (block_size * kv_dim elements).
  uint8_t* k(int32_t il, int32_t block, int32_t slot, int32_t col = 0) {
    return data_.data() + offset(il, 0, block, slot, col);
  }
  uint8_t* v(int32_t il, int32_t block, int32_t slot, int32_t col = 0) {
    return data_.data() + offset(il, 1, block, slot, col);
  }
  const uint8_t* k(int32_t il, int32_t block, int32_t slot, int32_t col = 0) const {
    return data_.data() + offset(il, 0, block, slot, col);
  }
  const uint8_t* v(int32_t il, int32_t block, int32_t slot, int32_t col = 0) const {
    return data_.data() + offset(il, 1, block, slot, col);
  }
  // Writes one token's K and V rows (kv_dim floats each), rounded to the store's type.
  void write(int32_t il, int32_t block, int32_t slot, const float* k_row, const float* v_row);
  // Writes columns [col, col + n) of one token's K and V (k_cols, v_cols: those n floats), inside one
  // head of the store; the same values write() stores there.
  void write_cols(int32_t il, int32_t block, int32_t slot, int32_t col, int32_t n, const float* k_cols,
                  const float* v_cols);
  // Commits the whole store now (HugeBuffer::prefault): a serving engine's KV pool is meant to be
  // used in full, and faulting its pages in while requests run stalls every thread at the next barrier.
  void prefault() { data_.prefault(); }
  // Copies every layer's K and V of block src into block dst (copy-on-write).
  void copy_block(int32_t src, int32_t dst);

  // The type new stores get when none is given: kF16 unless set (llmopt's --kv-type).
  static DType default_type();
  static void set_default_type(DType t);  // kF16 or kF32

 private:
  size_t offset(int32_t il, int32_t kv, int32_t block, int32_t slot, int32_t col) const {
    LLMOPT_CHECK(il >= 0 && il < n_layer_ && block >= 0 && block < n_blocks_ && slot >= 0 && slot < block_size_ &&
                 col >= 0 && col < kv_dim_);
    const size_t blk = (static_cast<size_t>(il) * 2 + kv) * n_blocks_ + block;
    const size_t unit = static_cast<size_t>(col / head_dim_);
    return (((blk * (kv_dim_ / head_dim_) + unit) * block_size_ + slot) * head_dim_ + col % head_dim_) * elem_bytes();
  }
  int32_t n_layer_, kv_dim_, n_blocks_, block_size_, head_dim_;
  DType type_;
  HugeBuffer data_;  // zeroed, committed on first write or by prefault(); huge pages where the kernel has them
};

}  // namespace llmopt
