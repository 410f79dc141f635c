// Public entry points of the kernels layer (kernels.h). Argument invariants are checked here once;
// matrix products go to the selected ISA's kernels (dispatch.h) where it has one for the weight
// type, everything else to the reference kernels in ref/ through the dtype-traits table.
#include "kernels/kernels.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <cstring>
#include <vector>

#include "core/check.h"
#include "kernels/dispatch.h"
#include "kernels/ref/ref.h"
#include "kernels/repack.h"
#include "kernels/rotate.h"
#include "kernels/type_traits.h"

namespace llmopt::kernels {

bool can_dequantize(DType t) {
  const TypeTraits* tr = find_type_traits(t);
  return tr != nullptr && tr->dequantize_row != nullptr;
}

void dequantize_row(DType t, const void* src, float* dst, int64_t n) {
  const TypeTraits* tr = find_type_traits(t);
  LLMOPT_CHECK_MSG(tr != nullptr && tr->dequantize_row != nullptr, dtype_name(t));
  LLMOPT_CHECK(n >= 0 && n % dtype_info(t).block_size == 0);
  tr->dequantize_row(src, dst, n);
}

void dequantize_view_row(const TensorView& w, int64_t r, float* dst) {
  LLMOPT_CHECK(w.present() && r >= 0 && r < w.rows());
  const int64_t n = w.cols();
  if (w.type == DType::kI8Ch) {
    LLMOPT_CHECK_MSG(w.row_scale != nullptr, "i8_ch tensor without its row scales");
    const auto* q = reinterpret_cast<const int8_t*>(w.data + static_cast<size_t>(r) * static_cast<size_t>(n));
    const float s = w.row_scale[r];
    for (int64_t c = 0; c < n; ++c) dst[c] = s * static_cast<float>(q[c]);
    if (w.rot != nullptr) rotate_rows(w.rot, w.rot_m, dst, 1, n, dst, /*inverse=*/true);  // the codes hold W R
    return;
  }
  if (is_r16(w.type)) {
    dequantize_r16_row(w.type, w.data, w.rows(), n, r, dst);
    return;
  }
  dequantize_row(w.type, w.row(r), dst, n);
}

bool can_quantize(DType t) {
  const TypeTraits* tr = find_type_traits(t);
  return tr != nullptr && tr->quantize_row != nullptr;
}

void quantize_row(DType t, const float* src, void* dst, int64_t n) {
  if (const IsaKernels* isa = active_isa_kernels(); isa != nullptr && t == DType::kF16) {
    LLMOPT_CHECK(n >= 0);
    isa->f32_to_f16_row(src, dst, n);  // the same bits as the reference
    return;
  }
  const TypeTraits* tr = find_type_traits(t);
  LLMOPT_CHECK_MSG(tr != nullptr && tr->quantize_row != nullptr, dtype_name(t));
  LLMOPT_CHECK(n >= 0 && n % dtype_info(t).block_size == 0);
  tr->quantize_row(src, dst, n);
}

void matmul(const TensorView& w, const float* x, int64_t m, float* y, ThreadPool& pool) {
  matmul_bias(w, nullptr, x, m, y, pool);
}

namespace {

// The fast row kernel for w and its arguments (activations not yet attached); false when w has no
// fast kernel on this ISA (the reference path then computes the product).
bool fast_matmul_setup(const IsaKernels* isa, const TensorView& w, const float* bias, const float* x, int64_t m,
                       float* y, MatmulKernel* kernel, MatmulArgs* a) {
  *kernel = isa != nullptr ? isa->find_matmul(w.type) : MatmulKernel{};
  if (w.type == DType::kI8Ch) {
    LLMOPT_CHECK_MSG(w.row_scale != nullptr, "matmul: i8_ch weight without its row scales");
    if (kernel->rows == nullptr) *kernel = {ref::matmul_rows_i8ch, ActForm::kI8Rows};
  }
  if (kernel->rows == nullptr || !w.present() || w.shape.size() != 2) return false;
  a->n_out = w.shape[0];
  a->k = w.shape[1];
  const auto row_bytes = dtype_row_bytes(w.type, a->k);
  LLMOPT_CHECK_MSG(row_bytes.has_value(), "matmul: row length is not a multiple of the block size");
  LLMOPT_CHECK(*row_bytes * static_cast<size_t>(a->n_out) <= w.nbytes);
  a->w = w.data;
  a->w_row_bytes = *row_bytes;
  a->m = m;
  a->x = x;
  a->bias = bias;
  a->y = y;
  return true;
}

// Below this many input elements the rows are normalized / quantized on the calling thread (a
// hand-off costs more).
constexpr int64_t kMinParallelRowElems = int64_t{1} << 15;

// Runs body(i0, i1, thread) over [0, n): on the pool when the work (n * elems_per_item) is large.
template <class F>
void for_rows(ThreadPool& pool, int64_t n, int64_t elems_per_item, F&& body) {
  if (n > 1 && n * elems_per_item >= kMinParallelRowElems) {
    pool.parallel_for(n, body);
  } else {
    body(0, n, 0);
  }
}

// NOTE: activations are quantized once per call (over the pool for long inputs); the buffers only
// grow, so steady-state decode does not allocate.
const BlockQ8Act* quantize_q8_blocks(const IsaKernels* isa, const float* x, int64_t m, int64_t k, ThreadPool& pool) {
  LLMOPT_CHECK(k % kQK8_0 == 0);
  thread_local std::vector<BlockQ8Act> xq;
  const int64_t nb = k / kQK8_0;
  if (xq.size() < static_cast<size_t>(m * nb)) xq.resize(static_cast<size_t>(m * nb));
  BlockQ8Act* q = xq.data();
  for_rows(pool, m, k, [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; ++i) isa->quantize_act(x + i * k, q + i * nb, k);
  });
  return q;
}

// Rows of Q8 blocks interleaved by 8 (BlockQ8x8); the last group's missing rows are zero.
const BlockQ8x8* interleave_q8_blocks(const BlockQ8Act* xq, int64_t m, int64_t nb, ThreadPool& pool) {
  thread_local std::vector<BlockQ8x8> x8;
  const int64_t n_groups = (m + 7) / 8;
  if (x8.size() < static_cast<size_t>(n_groups * nb)) x8.resize(static_cast<size_t>(n_groups * nb));
  BlockQ8x8* out = x8.data();
  for_rows(pool, n_groups, 8 * nb * kQK8_0, [&](int64_t g0, int64_t g1, int) {
    for (int64_t g = g0; g < g1; ++g) {
      for (int64_t b = 0; b < nb; ++b) {
        BlockQ8x8& o = out[g * nb + b];
        for (int64_t c = 0; c < 8; ++c) {
          const int64_t i = g * 8 + c;
          if (i >= m) {
            o.d[c] = o.s[c] = 0.0f;
            o.qsum[0][c] = o.qsum[1][c] = 0;
            for (auto& grp : o.qs) std::memset(grp + 4 * c, 0, 4);
            continue;
          }
          const BlockQ8Act& src = xq[i * nb + b];
          o.d[c] = src.d;
          o.s[c] = src.s;
          for (int64_t j = 0; j < 8; ++j) std::memcpy(o.qs[j] + 4 * c, src.qs + 4 * j, 4);
          for (int h = 0; h < 2; ++h) {
            int32_t sum = 0;
            for (int e = 0; e < 16; ++e) sum += src.qs[16 * h + e];
            o.qsum[h][c] = sum;
          }
        }
      }
    }
  });
  return out;
}

// One int8 scale per token (or the weight's static one); rows zero-padded to whole 32-byte chunks; for
// batches of kMinInterleaveRows rows or more also interleaved by 8 rows (MatmulArgs::xi8x8). Over the
// pool for long inputs.
void quantize_i8_rows(const TensorView& w, const float* x, int64_t m, MatmulArgs* a, ThreadPool& pool) {
  thread_local std::vector<int8_t> xi8;
  thread_local std::vector<float> xs;
  const int64_t k = a->k, k_pad = (k + 31) / 32 * 32;
  if (w.rot != nullptr) {  // the codes hold W R: quantize x R
    thread_local std::vector<float> xr;
    if (xr.size() < static_cast<size_t>(m * k)) xr.resize(static_cast<size_t>(m * k));
    float* out = xr.data();
    for_rows(pool, m, k * w.rot_m, [&](int64_t i0, int64_t i1, int) {
      rotate_rows(w.rot, w.rot_m, x + i0 * k, i1 - i0, k, out + i0 * k);
    });
    x = out;
  }
  a->k_pad = k_pad;
  if (xi8.size() < static_cast<size_t>(m * k_pad)) xi8.resize(static_cast<size_t>(m * k_pad));
  if (xs.size() < static_cast<size_t>(m)) xs.resize(static_cast<size_t>(m));
  int8_t* q = xi8.data();
  float* s = xs.data();
  const IsaKernels* isa = active_isa_kernels();
  const auto quantize_row = isa != nullptr ? isa->quantize_act_i8 : ref::quantize_act_i8;
  for_rows(pool, m, k, [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; ++i) {
      s[i] = quantize_row(x + i * k, k, w.act_scale, q + i * k_pad);
      std::fill(q + i * k_pad + k, q + (i + 1) * k_pad, int8_t{0});
    }
  });
  a->xi8 = q;
  a->x_scale = s;
  a->w_scale = w.row_scale;
  if (m < kMinInterleaveRows) return;
  thread_local std::vector<int8_t> x8;
  thread_local std::vector<float> xs8;
  const int64_t n_groups = (m + 7) / 8, n_chunks = k_pad / 32;
  if (x8.size() < static_cast<size_t>(n_groups * n_chunks * 256)) x8.resize(static_cast<size_t>(n_groups * n_chunks * 256));
  if (xs8.size() < static_cast<size_t>(n_groups * 8)) xs8.resize(static_cast<size_t>(n_groups * 8));
  int8_t* out = x8.data();
  float* s8 = xs8.data();
  for_rows(pool, n_groups, 8 * k_pad, [&](int64_t g0, int64_t g1, int) {
    for (int64_t grp = g0; grp < g1; ++grp) {
      for (int64_t c8 = 0; c8 < 8; ++c8) {
        const int64_t i = grp * 8 + c8;
        int8_t* dst = out + grp * n_chunks * 256 + c8 * 4;
        s8[grp * 8 + c8] = i < m ? s[i] : 0.0f;
        for (int64_t c = 0; c < n_chunks; ++c) {
          for (int64_t g = 0; g < 8; ++g) {
            if (i < m) {
              std::memcpy(dst + c * 256 + g * 32, q + i * k_pad + c * 32 + g * 4, 4);
            } else {
              std::memset(dst + c * 256 + g * 32, 0, 4);
            }
          }
        }
      }
    }
  });
  a->xi8x8 = out;
  a->x_scale8 = s8;
}

}  // namespace

void matmul_bias(const TensorView& w, const float* bias, const float* x, int64_t m, float* y,
                 ThreadPool& pool) {
  matmul_multi(std::span<const MatmulJob>(std::array<MatmulJob, 1>{MatmulJob{&w, bias, y}}), x, m, pool);
}

namespace {

void apply_epilogue(const IsaKernels* isa, Epilogue post, float* y, int64_t n_out, int64_t m, int64_t lo, int64_t hi) {
  if (post != Epilogue::kGelu || lo >= hi) return;
  for (int64_t i = 0; i < m; ++i) {
    float* row = y + i * n_out + lo;
    if (isa != nullptr) {
      isa->gelu_inplace(row, hi - lo);
    } else {
      ref::gelu_inplace(row, hi - lo);
    }
  }
}

void norm_row(const RowNorm& nm, const float* x, float* out, int64_t n) {
  if (nm.layer) {
    layer_norm(x, nm.w, nm.b, nm.eps, out, n);
  } else {
    rms_norm(x, nm.w, nm.eps, out, n);
  }
}

// The products of matmul_multi; xq_given: the input already as Q8 blocks (every kernel reads them).
void multi_products(std::span<const MatmulJob> jobs, const float* x, int64_t m, ThreadPool& pool,
                    const BlockQ8Act* xq_given);

}  // namespace

void matmul_multi(std::span<const MatmulJob> jobs, const float* x, int64_t m, ThreadPool& pool) {
  multi_products(jobs, x, m, pool, nullptr);
}

void matmul_multi_normed(std::span<const MatmulJob> jobs, const float* x, int64_t m, const RowNorm& norm, float* h,
                         ThreadPool& pool) {
  LLMOPT_CHECK(!jobs.empty() && jobs[0].w != nullptr && jobs[0].w->shape.size() == 2);
  const int64_t k = jobs[0].w->shape[1];
  const IsaKernels* isa = active_isa_kernels();
  bool fused = isa != nullptr && k % kQK8_0 == 0 && m > 0;
  for (const MatmulJob& job : jobs) {
    const MatmulKernel kern = isa != nullptr ? isa->find_matmul(job.w->type) : MatmulKernel{};
    fused = fused && kern.rows != nullptr && kern.act == ActForm::kQ8Blocks && job.w->shape.size() == 2 &&
            job.w->shape[1] == k;
  }
  if (!fused) {
    for_rows(pool, m, k, [&](int64_t i0, int64_t i1, int) {
      for (int64_t i = i0; i < i1; ++i) norm_row(norm, x + i * k, h + i * k, k);
    });
    multi_products(jobs, h, m, pool, nullptr);
    return;
  }
  // NOTE: the same row operations as norm into h, then quantize_q8_blocks: bit-identical blocks.
  const int64_t nb = k / kQK8_0;
  thread_local std::vector<BlockQ8Act> xq;
  if (xq.size() < static_cast<size_t>(m * nb)) xq.resize(static_cast<size_t>(m * nb));
  BlockQ8Act* q = xq.data();
  for_rows(pool, m, k, [&](int64_t i0, int64_t i1, int) {
    thread_local std::vector<float> row;
    if (row.size() < static_cast<size_t>(k)) row.resize(static_cast<size_t>(k));
    for (int64_t i = i0; i < i1; ++i) {
      norm_row(norm, x + i * k, row.data(), k);
      isa->quantize_act(row.data(), q + i * nb, k);
    }
  });
  multi_products(jobs, x, m, pool, q);
}

namespace {

void multi_products(std::span<const MatmulJob> jobs, const float* x, int64_t m, ThreadPool& pool,
                    const BlockQ8Act* xq_given) {
  const IsaKernels* isa = active_isa_kernels();
  constexpr size_t kMaxJobs = 4;
  std::array<MatmulKernel, kMaxJobs> kernel;
  std::array<MatmulArgs, kMaxJobs> a;
  // Several weights go through one pass only when each has a fast kernel reading f32 or Q8 blocks
  // (one quantization of x serves them all); otherwise each product runs on its own.
  // gate and up with the SwiGLU epilogue: both products of a row range, then their swiglu into gate.
  const bool glu = jobs.size() == 2 && jobs[1].post == Epilogue::kSwiGluPrev;
  for (size_t j = 0; j < jobs.size(); ++j) {
    LLMOPT_CHECK_MSG(jobs[j].post != Epilogue::kSwiGluPrev ||
                         (glu && j == 1 && jobs[0].w->shape[0] == jobs[1].w->shape[0]),
                     "matmul_multi: the SwiGLU epilogue goes on the second of two products of equal rows");
  }
  const int64_t n_glu = glu ? jobs[0].w->shape[0] : 0;
  auto finish_glu = [&](int64_t r0, int64_t r1) {
    for (int64_t i = 0; i < m && r0 < r1; ++i) {
      float* g = jobs[0].y + i * n_glu + r0;
      const float* u = jobs[1].y + i * n_glu + r0;
      if (isa != nullptr) {
        isa->swiglu(g, u, g, r1 - r0);
      } else {
        ref::swiglu(g, u, g, r1 - r0);
      }
    }
  };
  bool together = jobs.size() <= kMaxJobs;
  for (size_t j = 0; j < jobs.size() && together; ++j) {
    together = fast_matmul_setup(isa, *jobs[j].w, jobs[j].bias, x, m, jobs[j].y, &kernel[j], &a[j]) &&
               (jobs.size() == 1 || kernel[j].act != ActForm::kI8Rows) && a[j].k == a[0].k;
  }
  if (!together) {
    LLMOPT_CHECK(xq_given == nullptr);
    if (jobs.size() == 1) {
      ref::matmul_bias(*jobs[0].w, jobs[0].bias, x, m, jobs[0].y, pool);
      if (m > 0) apply_epilogue(isa, jobs[0].post, jobs[0].y, jobs[0].w->shape[0], m, 0, jobs[0].w->shape[0]);
      return;
    }
    for (MatmulJob job : jobs) {
      if (job.post == Epilogue::kSwiGluPrev) job.post = Epilogue::kNone;
      multi_products(std::span<const MatmulJob>(&job, 1), x, m, pool, nullptr);
    }
    finish_glu(0, n_glu);
    return;
  }
  if (m <= 0) return;
  const BlockQ8Act* xq = xq_given;
  const BlockQ8x8* xq8 = nullptr;
  uint64_t xq8_id = 0;
  static std::atomic<uint64_t> next_xq8_id{0};
  int64_t macs = 0;
  for (size_t j = 0; j < jobs.size(); ++j) {
    if (kernel[j].act == ActForm::kQ8Blocks) {
      if (xq == nullptr) xq = quantize_q8_blocks(isa, x, m, a[j].k, pool);
      if (xq8_id == 0 && m >= kMinInterleaveRows) xq8_id = next_xq8_id.fetch_add(1, std::memory_order_relaxed) + 1;
      if (xq8 == nullptr && m >= kMinInterleaveRows && !kernel[j].row_major_only) {
        xq8 = interleave_q8_blocks(xq, m, a[j].k / kQK8_0, pool);
      }
      a[j].xq = xq;
      a[j].xq8 = xq8;
      a[j].xq8_id = xq8_id;
    } else if (kernel[j].act == ActForm::kI8Rows) {
      quantize_i8_rows(*jobs[j].w, x, m, &a[j], pool);
    } else if (m >= 2) {  // f32 activations: named too, for kernels that pack them once per product
      if (xq8_id == 0) xq8_id = next_xq8_id.fetch_add(1, std::memory_order_relaxed) + 1;
      a[j].xq8_id = xq8_id;
    }
    macs += m * a[j].n_out * a[j].k;
  }
  // NOTE: below ~256K multiply-adds (tens of microseconds) handing work to other threads costs more
  // than it saves; results are the same either way (rows are computed independently).
  if (macs < kMinParallelMacs) {
    for (size_t j = 0; j < jobs.size(); ++j) {
      kernel[j].rows(a[j], 0, a[j].n_out);
      apply_epilogue(isa, jobs[j].post, a[j].y, a[j].n_out, m, 0, a[j].n_out);
    }
    finish_glu(0, n_glu);
    return;
  }
  // Output rows go to the threads in groups of `align` (kMatmulRowAlign, or more where a kernel's
  // weights come in larger row groups).
  int64_t align = kMatmulRowAlign;
  for (size_t j = 0; j < jobs.size(); ++j) align = std::max(align, kernel[j].row_align);
  if (glu) {  // row groups of gate and up together
    const int64_t n_groups = (n_glu + align - 1) / align;
    const int64_t grain = (n_groups + 4 * pool.n_threads() - 1) / (4 * pool.n_threads());
    pool.parallel_for_dynamic(n_groups, grain, [&](int64_t g0, int64_t g1, int) {
      const int64_t r0 = g0 * align, r1 = std::min(g1 * align, n_glu);
      kernel[0].rows(a[0], r0, r1);
      kernel[1].rows(a[1], r0, r1);
      finish_glu(r0, r1);
    });
    return;
  }
  // Groups of `align` output rows, numbered across the jobs in order; one hand-off for all.
  std::array<int64_t, kMaxJobs + 1> first{};
  for (size_t j = 0; j < jobs.size(); ++j) {
    first[j + 1] = first[j] + (a[j].n_out + align - 1) / align;
  }
  // Several chunks per thread, taken by whichever thread is free (on a shared machine one thread is
  // often held up for a while; with one static half each the other then waits for it).
  const int64_t n_groups = first[jobs.size()];
  const int64_t grain = (n_groups + 4 * pool.n_threads() - 1) / (4 * pool.n_threads());
  pool.parallel_for_dynamic(n_groups, grain, [&](int64_t g0, int64_t g1, int) {
    for (size_t j = 0; j < jobs.size(); ++j) {
      const int64_t lo = std::max(g0, first[j]) - first[j], hi = std::min(g1, first[j + 1]) - first[j];
      if (lo < hi) {
        const int64_t r0 = lo * align, r1 = std::min(hi * align, a[j].n_out);
        kernel[j].rows(a[j], r0, r1);
        apply_epilogue(isa, jobs[j].post, a[j].y, a[j].n_out, m, r0, r1);
      }
    }
  });
}

}  // namespace

float dot_f32(const float* a, const float* b, int64_t n) {
  const IsaKernels* k = active_isa_kernels();
  return k != nullptr ? k->dot_f32(a, b, n) : ref::dot_f32(a, b, n);
}
void axpy_f32(float a, const float* x, float* y, int64_t n) {
  const IsaKernels* k = active_isa_kernels();
  if (k != nullptr) {
    k->axpy_f32(a, x, y, n);
  } else {
    ref::axpy_f32(a, x, y, n);
  }
}

void attn_block(const AttnQueries& a, int64_t hd, float scale, const void* k, const void* v, bool kv_f16,
                int64_t stride, int32_t n) {
  LLMOPT_CHECK(n >= 0 && n <= kAttnChunk && a.n_tok * a.group <= kAttnMaxRows);
  const IsaKernels* isa = active_isa_kernels();
  if (isa != nullptr) {
    isa->attn_block(a, hd, scale, k, v, kv_f16, stride, n);
  } else {
    ref::attn_block(a, hd, scale, k, v, kv_f16, stride, n);
  }
}

void rms_norm(const float* x, const float* w, float eps, float* out, int64_t n) {
  const IsaKernels* isa = active_isa_kernels();
  if (isa != nullptr) {
    isa->rms_norm(x, w, eps, out, n);
  } else {
    ref::rms_norm(x, w, eps, out, n);
  }
}
void layer_norm(const float* x, const float* w, const float* b, float eps, float* out, int64_t n) {
  const IsaKernels* isa = active_isa_kernels();
  if (isa != nullptr) {
    isa->layer_norm(x, w, b, eps, out, n);
  } else {
    ref::layer_norm(x, w, b, eps, out, n);
  }
}
void gelu_inplace(float* x, int64_t n) {
  const IsaKernels* isa = active_isa_kernels();
  if (isa != nullptr) {
    isa->gelu_inplace(x, n);
  } else {
    ref::gelu_inplace(x, n);
  }
}
void swiglu(const float* gate, const float* up, float* out, int64_t n) {
  const IsaKernels* isa = active_isa_kernels();
  if (isa != nullptr) {
    isa->swiglu(gate, up, out, n);
  } else {
    ref::swiglu(gate, up, out, n);
  }
}
void softmax_inplace(float* x, int64_t n) {
  const IsaKernels* isa = active_isa_kernels();
  if (isa != nullptr) {
    isa->softmax_inplace(x, n);
  } else {
    ref::softmax_inplace(x, n);
  }
}
void add_inplace(float* y, const float* x, int64_t n) { ref::add_inplace(y, x, n); }

void rope_inplace(float* x, int64_t head_dim, int64_t n_rot, int64_t pos, float base, RopeLayout layout) {
  ref::rope_inplace(x, head_dim, n_rot, pos, base, layout);
}

}  // namespace llmopt::kernels
