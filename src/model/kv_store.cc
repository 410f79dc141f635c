// KvStore: allocation of the KV cache memory (see kv_store.h for the layout). The store is zeroed
// so that reading a slot that was never written yields 0 rather than garbage.
#include "model/kv_store.h"

namespace llmopt {

KvStore::KvStore(int32_t n_layer, int32_t kv_dim, int32_t n_blocks, int32_t block_size)
    : n_layer_(n_layer), kv_dim_(kv_dim), n_blocks_(n_blocks), block_size_(block_size) {
  LLMOPT_CHECK(n_layer > 0 && kv_dim > 0 && n_blocks > 0 && block_size > 0);
  // [n_layer][2][n_blocks][block_size][kv_dim]
  data_.assign(static_cast<size_t>(n_layer) * 2 * n_blocks * block_size * kv_dim, 0.0f);
}

}  // namespace llmopt
