// KvStore: allocation of the KV cache memory (see kv_store.h for the layout). The store is zeroed
// (fresh anonymous memory, core/huge_buffer.h) so that reading a slot that was never written yields 0
// rather than garbage.
#include "model/kv_store.h"

#include <algorithm>
#include <atomic>
#include <cstring>

#include "kernels/kernels.h"

namespace llmopt {
namespace {
std::atomic<DType> g_default_type{DType::kF16};
}  // namespace

DType KvStore::default_type() { return g_default_type.load(); }
void KvStore::set_default_type(DType t) {
  LLMOPT_CHECK(t == DType::kF16 || t == DType::kF32);
  g_default_type.store(t);
}

KvStore::KvStore(int32_t n_layer, int32_t kv_dim, int32_t n_blocks, int32_t block_size, DType type,
                 int32_t head_dim)
    : n_layer_(n_layer),
      kv_dim_(kv_dim),
      n_blocks_(n_blocks),
      block_size_(block_size),
      head_dim_(head_dim == 0 ? kv_dim : head_dim),
      type_(type) {
  LLMOPT_CHECK(n_layer > 0 && kv_dim > 0 && n_blocks > 0 && block_size > 0);
  LLMOPT_CHECK_MSG(head_dim_ > 0 && kv_dim % head_dim_ == 0, "KV store: head_dim must divide kv_dim");
  LLMOPT_CHECK(type == DType::kF16 || type == DType::kF32);
  // [n_layer][2][n_blocks][kv_dim / head_dim][block_size][head_dim]
  data_ = HugeBuffer(static_cast<size_t>(n_layer) * 2 * n_blocks * block_size * kv_dim * elem_bytes());
}

void KvStore::write(int32_t il, int32_t block, int32_t slot, const float* k_row, const float* v_row) {
  for (int32_t c = 0; c < kv_dim_; c += head_dim_) {
    if (type_ == DType::kF32) {
      std::memcpy(k(il, block, slot, c), k_row + c, static_cast<size_t>(head_dim_) * sizeof(float));
      std::memcpy(v(il, block, slot, c), v_row + c, static_cast<size_t>(head_dim_) * sizeof(float));
    } else {
      kernels::quantize_row(DType::kF16, k_row + c, k(il, block, slot, c), head_dim_);
      kernels::quantize_row(DType::kF16, v_row + c, v(il, block, slot, c), head_dim_);
    }
  }
}

void KvStore::write_cols(int32_t il, int32_t block, int32_t slot, int32_t col, int32_t n, const float* k_cols,
                         const float* v_cols) {
  LLMOPT_CHECK(n > 0 && col >= 0 && col % head_dim_ + n <= head_dim_);
  if (type_ == DType::kF32) {
    std::memcpy(k(il, block, slot, col), k_cols, static_cast<size_t>(n) * sizeof(float));
    std::memcpy(v(il, block, slot, col), v_cols, static_cast<size_t>(n) * sizeof(float));
  } else {
    kernels::quantize_row(DType::kF16, k_cols, k(il, block, slot, col), n);
    kernels::quantize_row(DType::kF16, v_cols, v(il, block, slot, col), n);
  }
}

void KvStore::copy_block(int32_t src, int32_t dst) {
  const size_t n = static_cast<size_t>(block_size_) * kv_dim_ * elem_bytes();
  for (int32_t il = 0; il < n_layer_; ++il) {
    for (int32_t kv = 0; kv < 2; ++kv) {
      std::memcpy(data_.data() + offset(il, kv, dst, 0, 0), data_.data() + offset(il, kv, src, 0, 0), n);
    }
  }
}

}  // namespace llmopt
