// KvStore: allocation of the KV cache memory (see kv_store.h for the layout). The store is zeroed
// so that reading a slot that was never written yields 0 rather than garbage.
#include "model/kv_store.h"

#include <algorithm>

namespace llmopt {

KvStore::KvStore(int32_t n_layer, int32_t kv_dim, int32_t n_blocks, int32_t block_size)
    : n_layer_(n_layer), kv_dim_(kv_dim), n_blocks_(n_blocks), block_size_(block_size) {
  LLMOPT_CHECK(n_layer > 0 && kv_dim > 0 && n_blocks > 0 && block_size > 0);
  // [n_layer][2][n_blocks][block_size][kv_dim]
  data_.assign(static_cast<size_t>(n_layer) * 2 * n_blocks * block_size * kv_dim, 0.0f);
}

void KvStore::copy_block(int32_t src, int32_t dst) {
  const size_t n = static_cast<size_t>(block_size_) * kv_dim_;
  for (int32_t il = 0; il < n_layer_; ++il) {
    for (int32_t kv = 0; kv < 2; ++kv) {
      const float* s = data_.data() + offset(il, kv, src, 0);
      std::copy(s, s + n, data_.data() + offset(il, kv, dst, 0));
    }
  }
}

}  // namespace llmopt
