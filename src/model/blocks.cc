// Shared forward-pass building blocks (see blocks.h). The paged attention here is the only code
// that reads the KV cache: it walks each sequence's block table block by block.
#include "model/blocks.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/check.h"
#include "kernels/kernels.h"

namespace llmopt::blocks {

Activations::Activations(const ModelConfig& cfg, const TokenBatch& batch, int n_threads) : observer(batch.observer) {
  const size_t n_tok = static_cast<size_t>(batch.n_tok());
  x.resize(n_tok * cfg.n_embd);
  h.resize(n_tok * cfg.n_embd);
  proj.resize(n_tok * cfg.n_embd);
  qkv.resize(n_tok * (cfg.q_dim() + 2 * static_cast<size_t>(cfg.kv_dim())));
  attn.resize(n_tok * cfg.q_dim());
  ff_a.resize(n_tok * cfg.n_ff);
  if (cfg.arch == Arch::kLlama) ff_b.resize(n_tok * cfg.n_ff);
  attn_ml.resize(static_cast<size_t>(n_threads) * 2 * kernels::kAttnMaxRows);
}

void embed(const Weights& w, const TokenBatch& batch, int64_t n_embd, float* x) {
  std::vector<float> pos_row(w.pos_embd.present() ? n_embd : 0);  // [n_embd]
  for (int64_t t = 0; t < batch.n_tok(); ++t) {
    float* row = x + t * n_embd;
    kernels::dequantize_view_row(w.tok_embd, batch.ids[t], row);
    if (w.pos_embd.present()) {
      kernels::dequantize_view_row(w.pos_embd, batch.pos[t], pos_row.data());
      kernels::add_inplace(row, pos_row.data(), n_embd);
    }
  }
}

void layer_norm_rows(const float* x, const TensorView& w, const TensorView& b, float eps, int64_t n_rows,
                     int64_t n, float* out) {
  const float* bias = b.present() ? b.f32() : nullptr;
  for (int64_t r = 0; r < n_rows; ++r) kernels::layer_norm(x + r * n, w.f32(), bias, eps, out + r * n, n);
}

void rms_norm_rows(const float* x, const TensorView& w, float eps, int64_t n_rows, int64_t n, float* out) {
  for (int64_t r = 0; r < n_rows; ++r) kernels::rms_norm(x + r * n, w.f32(), eps, out + r * n, n);
}

void rope(const ModelConfig& cfg, const TokenBatch& batch, const Qkv& qkv, ThreadPool& pool) {
  const int64_t hd = cfg.head_dim;
  auto rows = [&](int64_t begin, int64_t end, int) {
    for (int64_t t = begin; t < end; ++t) {
      const int64_t pos = batch.pos[t];
      for (int32_t h = 0; h < cfg.n_head; ++h) {
        kernels::rope_inplace(qkv.q + t * qkv.q_stride + h * hd, hd, cfg.n_rot, pos, cfg.rope_theta,
                              cfg.rope_layout);
      }
      for (int32_t h = 0; h < cfg.n_head_kv; ++h) {
        kernels::rope_inplace(qkv.k + t * qkv.k_stride + h * hd, hd, cfg.n_rot, pos, cfg.rope_theta,
                              cfg.rope_layout);
      }
    }
  };
  // A few decode tokens are cheaper on the calling thread than handed out.
  if (batch.n_tok() * (cfg.n_head + cfg.n_head_kv) * hd < (int64_t{1} << 16)) {
    rows(0, batch.n_tok(), 0);
  } else {
    pool.parallel_for(batch.n_tok(), rows);
  }
}

namespace {

// Copies each token's K and V rows into its cache slot: block table[pos / block_size], slot
// pos % block_size. All of a layer's writes happen before any of its reads, so a token sees the
// tokens of its own sequence that arrive in the same batch.
void store_kv(const ModelConfig& cfg, int32_t il, const TokenBatch& batch, const Qkv& qkv, KvStore& kv) {
  (void)cfg;
  const int32_t bs = kv.block_size();
  for (int64_t t = 0; t < batch.n_tok(); ++t) {
    const int32_t pos = batch.pos[t];
    const int32_t block = batch.block_table[t][pos / bs];
    kv.write(il, block, pos % bs, qkv.k + t * qkv.k_stride, qkv.v + t * qkv.v_stride);
  }
}

}  // namespace

void attention(const ModelConfig& cfg, int32_t il, const TokenBatch& batch, const Qkv& qkv, KvStore& kv,
               Activations& act, ThreadPool& pool, bool apply_rope) {
  const KvStore& cache = kv;
  const int64_t hd = cfg.head_dim;
  const int64_t q_dim = cfg.q_dim();
  LLMOPT_CHECK_MSG(cache.head_dim() % hd == 0, "KV store rows must hold whole heads");
  const int32_t n_head_kv = cfg.n_head_kv;
  const int32_t group = cfg.n_head / cfg.n_head_kv;
  const int32_t bs = cache.block_size();
  const bool f16 = cache.type() == DType::kF16;
  const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
  // Query tiles: up to kTile consecutive tokens of one sequence (a prefill), so that each K/V chunk is
  // read once for all of them; a decode token is a tile of one.
  constexpr int32_t kAttnTileTokens = 16;
  const int32_t kTile = std::max(1, std::min(kAttnTileTokens, kernels::kAttnMaxRows / group));
  std::vector<int64_t>& tiles = act.attn_tiles;  // tile i: tokens [tiles[i], tiles[i + 1])
  tiles.clear();
  for (int64_t t = 0; t < batch.n_tok(); ++t) {
    const bool joins = !tiles.empty() && t - tiles.back() < kTile &&
                       batch.block_table[t].data() == batch.block_table[t - 1].data() &&
                       batch.pos[t] == batch.pos[t - 1] + 1;
    if (!joins) tiles.push_back(t);
  }
  const int64_t n_tiles = static_cast<int64_t>(tiles.size());
  tiles.push_back(batch.n_tok());
  // One item = one tile's query heads that share a KV head (GQA): each K/V chunk is read once for them.
  const int64_t n_items = n_tiles * n_head_kv;
  // NOTE: a small batch (a few decode tokens of a small model) is cheaper on one thread than the
  // hand-off to others; the per-item arithmetic is the same either way.
  const int64_t work = batch.n_tok() * cfg.n_head * (static_cast<int64_t>(batch.max_pos) + 1) * hd;
  const int n_threads = work < (int64_t{1} << 16) ? 1 : pool.n_threads();
  const size_t ml_per_thread = 2 * static_cast<size_t>(kernels::kAttnMaxRows);
  if (act.attn_ml.size() < ml_per_thread * static_cast<size_t>(n_threads)) {
    act.attn_ml.resize(ml_per_thread * static_cast<size_t>(n_threads));
  }

  // NOTE: each thread takes the same share of every tile's heads (a contiguous range of them, so that
  // it reads neighbouring parts of each cached position), which keeps the threads evenly loaded
  // whatever the tiles' context lengths. With fewer KV heads than
  // threads, items are dealt round-robin instead (later tokens of a prefill attend over more
  // positions, and striding keeps the threads evenly loaded).
  const bool heads_split = n_head_kv >= n_threads;
  if (!heads_split) {
    if (apply_rope) rope(cfg, batch, qkv, pool);
    store_kv(cfg, il, batch, qkv, kv);
  }
  const size_t eb = cache.elem_bytes();
  const size_t row_bytes = static_cast<size_t>(hd) * eb;
  const size_t slot_bytes = static_cast<size_t>(cache.head_dim()) * eb;  // one KV head's rows of a block
  const size_t gather_bytes = 2 * kernels::kAttnChunk * row_bytes;  // K then V rows of one chunk
  if (act.attn_gather.size() < gather_bytes * static_cast<size_t>(n_threads)) {
    act.attn_gather.resize(gather_bytes * static_cast<size_t>(n_threads));
  }
  auto body = [&](int tid) {
    float* m = act.attn_ml.data() + static_cast<size_t>(tid) * ml_per_thread;
    float* l = m + kernels::kAttnMaxRows;
    uint8_t* gk = act.attn_gather.data() + static_cast<size_t>(tid) * gather_bytes;
    uint8_t* gv = gk + kernels::kAttnChunk * row_bytes;
    int32_t n_vis[kernels::kAttnMaxRows];
    // heads_split: every tile's heads [g0, g1), next to each other in the cache rows. The thread
    // rotates and stores its own heads of every token before it reads any of them.
    const int64_t g0 = tid * n_head_kv / n_threads, g1 = (tid + 1) * n_head_kv / n_threads;
    if (heads_split && g1 > g0) {
      for (int64_t t = 0; t < batch.n_tok(); ++t) {
        const int32_t pos = batch.pos[t];
        float* kt = qkv.k + t * qkv.k_stride + g0 * hd;
        if (apply_rope) {
          float* qt = qkv.q + t * qkv.q_stride + g0 * group * hd;
          for (int64_t h = 0; h < (g1 - g0) * group; ++h) {
            kernels::rope_inplace(qt + h * hd, hd, cfg.n_rot, pos, cfg.rope_theta, cfg.rope_layout);
          }
          for (int64_t h = 0; h < g1 - g0; ++h) {
            kernels::rope_inplace(kt + h * hd, hd, cfg.n_rot, pos, cfg.rope_theta, cfg.rope_layout);
          }
        }
        const int32_t block = batch.block_table[t][pos / bs];
        for (int64_t g = g0; g < g1; ++g) {
          kv.write_cols(il, block, pos % bs, static_cast<int32_t>(g * hd), static_cast<int32_t>(hd),
                        qkv.k + t * qkv.k_stride + g * hd, qkv.v + t * qkv.v_stride + g * hd);
        }
      }
    }
    for (int64_t it = 0;; ++it) {
      int64_t item;
      if (heads_split) {
        if (g1 == g0 || it >= n_tiles * (g1 - g0)) break;
        item = (it / (g1 - g0)) * n_head_kv + g0 + it % (g1 - g0);
      } else {
        item = tid + it * n_threads;
        if (item >= n_items) break;
      }
      const int64_t tile = item / n_head_kv;
      const int32_t g = static_cast<int32_t>(item % n_head_kv);
      const int64_t t0 = tiles[static_cast<size_t>(tile)];
      const int32_t n_tok = static_cast<int32_t>(tiles[static_cast<size_t>(tile) + 1] - t0);
      const int32_t n_ctx = batch.pos[t0 + n_tok - 1] + 1;  // the tile's last token sees the most
      const std::span<const int32_t> table = batch.block_table[t0];
      const int32_t rows = n_tok * group;
      kernels::AttnQueries qs;
      qs.q = qkv.q + t0 * qkv.q_stride + static_cast<int64_t>(g) * group * hd;  // group heads of token t0
      qs.q_stride = qkv.q_stride;
      qs.o = act.attn.data() + t0 * q_dim + static_cast<int64_t>(g) * group * hd;
      qs.o_stride = q_dim;
      qs.n_tok = n_tok;
      qs.group = group;
      qs.n_vis = n_vis;
      qs.m = m;
      qs.l = l;
      for (int32_t t = 0; t < n_tok; ++t) std::fill(qs.o + t * q_dim, qs.o + t * q_dim + group * hd, 0.0f);
      std::fill(m, m + rows, -std::numeric_limits<float>::infinity());
      std::fill(l, l + rows, 0.0f);
      // Keys go to the kernel kAttnChunk positions at a time, aligned to positions rather than to
      // blocks, so the result does not depend on the block size or on where the blocks are. A chunk
      // that spans blocks (block sizes below kAttnChunk) is gathered into contiguous rows first.
      const int32_t col = g * static_cast<int32_t>(hd);  // the KV head's first column
      for (int32_t c = 0; c < n_ctx; c += kernels::kAttnChunk) {
        const int32_t cn = std::min(kernels::kAttnChunk, n_ctx - c);
        // The next chunk's K and V rows of this head are fetched while this chunk is computed: they
        // sit in another block wherever the pool put it, where the hardware prefetchers cannot
        // follow, and decode waited on them.
        // One address per block of the next chunk: the head's rows of a block follow each other
        // (slot_bytes apart), so the bytes from the first row to the end of the last are one range.
        for (int32_t p = c + cn, p_end = std::min(n_ctx, c + cn + kernels::kAttnChunk); p < p_end;) {
          const int32_t slot = p % bs, n_rows = std::min(bs - slot, p_end - p);
          const uint8_t* kr = cache.k(il, table[p / bs], slot, col);
          const uint8_t* vr = cache.v(il, table[p / bs], slot, col);
          const size_t span = static_cast<size_t>(n_rows - 1) * slot_bytes + row_bytes;
          for (size_t off = 0; off < span; off += 64) {
            __builtin_prefetch(kr + off);
            __builtin_prefetch(vr + off);
          }
          p += n_rows;
        }
        for (int32_t t = 0; t < n_tok; ++t) n_vis[t] = std::clamp(batch.pos[t0 + t] + 1 - c, 0, cn);
        const int32_t b0 = c / bs;
        if (b0 == (c + cn - 1) / bs) {
          kernels::attn_block(qs, hd, scale, cache.k(il, table[b0], c % bs, col), cache.v(il, table[b0], c % bs, col),
                              f16, cache.head_dim(), cn);
        } else {
          for (int32_t j = 0; j < cn; ++j) {
            const int32_t p = c + j;
            std::memcpy(gk + j * row_bytes, cache.k(il, table[p / bs], p % bs, col), row_bytes);
            std::memcpy(gv + j * row_bytes, cache.v(il, table[p / bs], p % bs, col), row_bytes);
          }
          kernels::attn_block(qs, hd, scale, gk, gv, f16, hd, cn);
        }
      }
      for (int32_t r = 0; r < rows; ++r) {
        float* o = qs.o + (r / group) * q_dim + (r % group) * hd;
        const float inv = 1.0f / l[r];
        for (int64_t d = 0; d < hd; ++d) o[d] *= inv;
      }
    }
  };
  if (n_threads == 1) {
    body(0);
  } else {
    pool.run_on_all(body);
  }
}

kernels::RowNorm layer_norm_of(const TensorView& w, const TensorView& b, float eps) {
  return {true, w.f32(), b.present() ? b.f32() : nullptr, eps};
}

kernels::RowNorm rms_norm_of(const TensorView& w, float eps) { return {false, w.f32(), nullptr, eps}; }

void normed_products(const Activations& act, const float* x, const kernels::RowNorm& norm, int64_t n_rows, int64_t n,
                     float* h, std::span<const kernels::MatmulJob> jobs, ThreadPool& pool) {
  if (act.observer == nullptr) {
    kernels::matmul_multi_normed(jobs, x, n_rows, norm, h, pool);
    return;
  }
  for (int64_t r = 0; r < n_rows; ++r) {
    if (norm.layer) {
      kernels::layer_norm(x + r * n, norm.w, norm.b, norm.eps, h + r * n, n);
    } else {
      kernels::rms_norm(x + r * n, norm.w, norm.eps, h + r * n, n);
    }
  }
  for (const kernels::MatmulJob& job : jobs) observe(act, *job.w, h, n_rows);
  kernels::matmul_multi(jobs, h, n_rows, pool);
}

void ffn_gelu(const LayerWeights& l, const float* x, const kernels::RowNorm& norm, int64_t n_tok, Activations& act,
              float* out, ThreadPool& pool) {
  float* up = act.ff_a.data();  // [n_tok, n_ff]
  const kernels::MatmulJob up_job[] = {
      {&l.w_up, l.b_up.present() ? l.b_up.f32() : nullptr, up, kernels::Epilogue::kGelu}};
  normed_products(act, x, norm, n_tok, l.w_up.shape[1], act.h.data(), up_job, pool);
  observe(act, l.w_down, up, n_tok);
  kernels::matmul_bias(l.w_down, l.b_down.present() ? l.b_down.f32() : nullptr, up, n_tok, out, pool);
}

void ffn_swiglu(const LayerWeights& l, const float* x, const kernels::RowNorm& norm, int64_t n_tok, Activations& act,
                float* out, ThreadPool& pool) {
  float* gate = act.ff_a.data();  // [n_tok, n_ff]
  float* up = act.ff_b.data();    // [n_tok, n_ff]
  // gate <- swiglu(gate, up), each thread's rows as soon as both products of them are done
  const kernels::MatmulJob jobs[] = {{&l.w_gate, nullptr, gate},
                                     {&l.w_up, nullptr, up, kernels::Epilogue::kSwiGluPrev}};
  normed_products(act, x, norm, n_tok, l.w_up.shape[1], act.h.data(), jobs, pool);
  observe(act, l.w_down, gate, n_tok);
  kernels::matmul(l.w_down, gate, n_tok, out, pool);
}

void gather_out_rows(const float* src, int64_t n, const TokenBatch& batch, float* dst) {
  for (int64_t r = 0; r < batch.n_out(); ++r) {
    std::memcpy(dst + r * n, src + batch.out_rows[r] * n, n * sizeof(float));
  }
}

void output_logits(const Weights& w, const float* x, int64_t n_rows, float* logits, ThreadPool& pool) {
  if (n_rows == 0) return;
  kernels::matmul(w.output, x, n_rows, logits, pool);
}

}  // namespace llmopt::blocks
