// The dense linear layer of training (declared in ops.h): y = x·Wᵀ + b and its backward.
// Plain cache-blocked loops over f32/f64; rows are split over the pool. The f32 products run on the
// kernels layer's runtime-dispatched matmul (AVX2/FMA, AVX-512) unless the reference ISA is selected.
#include <algorithm>
#include <cstdlib>
#include <type_traits>
#include <vector>

#if defined(__SSE__)
#include <xmmintrin.h>
#endif

#include "core/dtype.h"
#include "core/tensor.h"
#include "train/ops.h"

namespace llmopt::train {

namespace {

// y_j[i] += g_j * x[i] for four rows y_0..y_3 sharing each streamed element of x.
template <class S>
inline void axpy4(S g0, S g1, S g2, S g3, const S* x, S* y0, S* y1, S* y2, S* y3, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const S xv = x[i];
    y0[i] += g0 * xv;
    y1[i] += g1 * xv;
    y2[i] += g2 * xv;
    y3[i] += g3 * xv;
  }
}

// c[t] += sum over k of a[t][k] * m[k] for rows t in [begin, end): a [.., K] row-major, m [K, cols],
// c [.., cols]. Blocks of 4 rows share each streamed row of m while it is in L1. Every element adds
// its terms in ascending k, in the blocks and in the tail alike, so results do not depend on the split.
template <class S>
void rows_times_matrix_acc(const S* a, const S* m, int64_t K, int64_t cols, S* c, int64_t begin,
                           int64_t end) {
  int64_t t = begin;
  for (; t + 4 <= end; t += 4) {
    S* c0 = c + t * cols;
    S* c1 = c0 + cols;
    S* c2 = c1 + cols;
    S* c3 = c2 + cols;
    const S* g = a + t * K;
    for (int64_t k = 0; k < K; ++k) {
      axpy4<S>(g[k], g[K + k], g[2 * K + k], g[3 * K + k], m + k * cols, c0, c1, c2, c3, cols);
    }
  }
  for (; t < end; ++t) {
    for (int64_t k = 0; k < K; ++k) axpy(a[t * K + k], m + k * cols, c + t * cols, cols);
  }
}

// ---- f32 fast path ---------------------------------------------------------------------------------
// kernels::matmul computes each output element as one dot product over k whose operation sequence does
// not depend on the tile shape, the batch size or how weight rows are split over threads (see
// kernels/x86/matmul_x86.h and kernels/ref/matmul.cc), so results stay independent of the thread count.
// The product is also symmetric in its two operands (fmadd(w, x) == fmadd(x, w)), so the orientation
// chosen below (by shape only) does not change a result either.

// LLMOPT_TRAIN_PORTABLE_LINEAR (set to anything) selects the portable loops instead, for A/B timing;
// f32 results then differ in rounding, so a run must not switch between the two midway.
bool use_fast_f32() {
  static const bool portable = std::getenv("LLMOPT_TRAIN_PORTABLE_LINEAR") != nullptr;
  return !portable && kernels::active_isa() != kernels::Isa::kRef;
}

// y [m, n_out] = x [m, k] · wᵀ with w [n_out, k] (f32, row-major).
void gemm_nt(const float* x, int64_t m, const float* w, int64_t n_out, int64_t k, float* y, const float* bias,
             ThreadPool& pool) {
  TensorView v;
  v.type = DType::kF32;
  v.shape = {n_out, k};
  v.data = reinterpret_cast<const uint8_t*>(w);
  v.nbytes = static_cast<size_t>(n_out * k) * sizeof(float);
  kernels::matmul_bias(v, bias, x, m, y, pool);
}

// dst [cols, rows] = srcᵀ for src [rows, cols]: 32 x 32 blocks of 4 x 4 SSE transposes; column blocks
// split over the pool (a pure copy, so the split cannot change a result).
void transpose(const float* src, int64_t rows, int64_t cols, float* dst, ThreadPool& pool) {
  constexpr int64_t kB = 32;
  const int64_t nb = (cols + kB - 1) / kB;
  pool.parallel_for(nb, [&](int64_t b0, int64_t b1, int) {
    for (int64_t c0 = b0 * kB; c0 < std::min(b1 * kB, cols); c0 += kB) {
      const int64_t c1 = std::min(c0 + kB, cols);
      for (int64_t r0 = 0; r0 < rows; r0 += kB) {
        const int64_t r1 = std::min(r0 + kB, rows);
        int64_t r = r0;
#if defined(__SSE__)
        for (; r + 4 <= r1; r += 4) {
          int64_t c = c0;
          for (; c + 4 <= c1; c += 4) {
            __m128 a0 = _mm_loadu_ps(src + r * cols + c);
            __m128 a1 = _mm_loadu_ps(src + (r + 1) * cols + c);
            __m128 a2 = _mm_loadu_ps(src + (r + 2) * cols + c);
            __m128 a3 = _mm_loadu_ps(src + (r + 3) * cols + c);
            _MM_TRANSPOSE4_PS(a0, a1, a2, a3);
            _mm_storeu_ps(dst + c * rows + r, a0);
            _mm_storeu_ps(dst + (c + 1) * rows + r, a1);
            _mm_storeu_ps(dst + (c + 2) * rows + r, a2);
            _mm_storeu_ps(dst + (c + 3) * rows + r, a3);
          }
          for (; c < c1; ++c) {
            for (int64_t rr = r; rr < r + 4; ++rr) dst[c * rows + rr] = src[rr * cols + c];
          }
        }
#endif
        for (; r < r1; ++r) {
          for (int64_t c = c0; c < c1; ++c) dst[c * rows + r] = src[r * cols + c];
        }
      }
    }
  });
}

// dst [rows, cols] += src [rows, cols] (transposed_src: src is [cols, rows]).
void add_into(const float* src, int64_t rows, int64_t cols, bool transposed_src, float* dst, ThreadPool& pool) {
  if (!transposed_src) {
    pool.parallel_for(rows, [&](int64_t r0, int64_t r1, int) {
      for (int64_t i = r0 * cols; i < r1 * cols; ++i) dst[i] += src[i];
    });
    return;
  }
  constexpr int64_t kB = 32;
  const int64_t nb = (rows + kB - 1) / kB;
  pool.parallel_for(nb, [&](int64_t b0, int64_t b1, int) {
    for (int64_t r0 = b0 * kB; r0 < std::min(b1 * kB, rows); r0 += kB) {
      const int64_t r1 = std::min(r0 + kB, rows);
      for (int64_t c0 = 0; c0 < cols; c0 += kB) {
        const int64_t c1 = std::min(c0 + kB, cols);
        for (int64_t r = r0; r < r1; ++r) {
          for (int64_t c = c0; c < c1; ++c) dst[r * cols + c] += src[c * rows + r];
        }
      }
    }
  });
}

void linear_forward_f32(const float* x, const float* w, const float* b, int64_t n, int64_t in, int64_t out,
                        float* y, ThreadPool& pool) {
  gemm_nt(x, n, w, out, in, y, b, pool);
}

// dst [p, q] += A [p, k] · Bᵀ (B [q, k]). The operand with fewer rows is the kernel's activation
// ("x", kept in cache) and the other the streamed "weight"; for long k the product runs over fixed
// chunks of kc columns (kc from the shapes only), so the activation chunk stays in L2, and the
// chunk products are summed in ascending chunk order. Either way every element's arithmetic depends
// on the shapes alone, never on the thread count.
void acc_abt(const float* A, int64_t p, const float* B, int64_t q, int64_t k, float* dst, ThreadPool& pool) {
  const bool a_small = p <= q;
  const float* xs = a_small ? A : B;
  const float* ws = a_small ? B : A;
  const int64_t m = a_small ? p : q;
  const int64_t nw = a_small ? q : p;
  // Unchunked up to 512 KB of activations; chunks of ~256 KB beyond that (L2 is 512 KB per core on
  // the machines measured).
  constexpr int64_t kCacheFloats = int64_t{128} << 10;
  int64_t kc = k;
  if (m * k > kCacheFloats) kc = std::max<int64_t>(256, (kCacheFloats / 2 / m) / 8 * 8);
  thread_local std::vector<float> part, acc, xb, wb;
  part.resize(static_cast<size_t>(m * nw));
  if (kc >= k) {
    gemm_nt(xs, m, ws, nw, k, part.data(), nullptr, pool);
  } else {
    acc.assign(static_cast<size_t>(m * nw), 0.0f);
    for (int64_t c0 = 0; c0 < k; c0 += kc) {
      const int64_t len = std::min(kc, k - c0);
      xb.resize(static_cast<size_t>(m * len));
      wb.resize(static_cast<size_t>(nw * len));
      float* wbp = wb.data();  // the pool's threads must not name this thread's thread_locals
      pool.parallel_for(nw, [&](int64_t r0, int64_t r1, int) {
        for (int64_t r = r0; r < r1; ++r) std::copy_n(ws + r * k + c0, len, wbp + r * len);
      });
      for (int64_t r = 0; r < m; ++r) std::copy_n(xs + r * k + c0, len, xb.data() + r * len);
      gemm_nt(xb.data(), m, wb.data(), nw, len, part.data(), nullptr, pool);
      add_into(part.data(), m, nw, false, acc.data(), pool);
    }
    part.swap(acc);
  }
  add_into(part.data(), p, q, !a_small, dst, pool);
}

void linear_backward_f32(const float* dy, const float* x, const float* w, int64_t n, int64_t in, int64_t out,
                         float* dx, float* dw, ThreadPool& pool) {
  thread_local std::vector<float> ta, tb;
  if (dx != nullptr) {
    // dx [n, in] += dy [n, out] · w = dy · (wᵀ)ᵀ, k = out.
    ta.resize(static_cast<size_t>(in * out));
    transpose(w, out, in, ta.data(), pool);
    acc_abt(dy, n, ta.data(), in, out, dx, pool);
  }
  if (dw != nullptr) {
    // dw [out, in] += dyᵀ [out, n] · (xᵀ [in, n])ᵀ, k = n.
    ta.resize(static_cast<size_t>(out * n));
    transpose(dy, n, out, ta.data(), pool);
    tb.resize(static_cast<size_t>(in * n));
    transpose(x, n, in, tb.data(), pool);
    acc_abt(ta.data(), out, tb.data(), in, n, dw, pool);
  }
}

}  // namespace

template <class S>
void linear_forward(const S* x, const S* w, const S* b, int64_t n, int64_t in, int64_t out, S* y,
                    ThreadPool& pool) {
  if constexpr (std::is_same_v<S, float>) {
    if (use_fast_f32()) {
      linear_forward_f32(x, w, b, n, in, out, y, pool);
      return;
    }
  }
  // y = bias + x · wt with wt = wᵀ [in, out]: the inner loop runs along contiguous output columns.
  thread_local std::vector<S> wt;
  wt.resize(static_cast<size_t>(in * out));
  for (int64_t o = 0; o < out; ++o) {
    for (int64_t i = 0; i < in; ++i) wt[static_cast<size_t>(i * out + o)] = w[o * in + i];
  }
  const S* wtp = wt.data();
  pool.parallel_for(n, [&](int64_t begin, int64_t end, int) {
    for (int64_t t = begin; t < end; ++t) {
      for (int64_t o = 0; o < out; ++o) y[t * out + o] = b != nullptr ? b[o] : S(0);
    }
    rows_times_matrix_acc<S>(x, wtp, in, out, y, begin, end);
  });
}

template <class S>
void linear_backward(const S* dy, const S* x, const S* w, int64_t n, int64_t in, int64_t out, S* dx, S* dw,
                     S* db, ThreadPool& pool) {
  if constexpr (std::is_same_v<S, float>) {
    if (use_fast_f32()) {
      linear_backward_f32(dy, x, w, n, in, out, dx, dw, pool);
      dx = nullptr;  // done; only db is left for the loops below
      dw = nullptr;
    }
  }
  // dx [n, in] += dy [n, out] · w [out, in], rows split over the pool.
  if (dx != nullptr) {
    pool.parallel_for(n, [&](int64_t begin, int64_t end, int) {
      rows_times_matrix_acc<S>(dy, w, out, in, dx, begin, end);
    });
  }
  // dw [out, in] += dyᵀ · x: blocks of 4 rows of dw share each streamed row of x; each element adds
  // its terms in ascending t.
  if (dw != nullptr) {
    pool.parallel_for(out, [&](int64_t begin, int64_t end, int) {
      int64_t o = begin;
      for (; o + 4 <= end; o += 4) {
        S* w0 = dw + o * in;
        S* w1 = w0 + in;
        S* w2 = w1 + in;
        S* w3 = w2 + in;
        for (int64_t t = 0; t < n; ++t) {
          const S* g = dy + t * out + o;
          axpy4<S>(g[0], g[1], g[2], g[3], x + t * in, w0, w1, w2, w3, in);
        }
      }
      for (; o < end; ++o) {
        for (int64_t t = 0; t < n; ++t) axpy(dy[t * out + o], x + t * in, dw + o * in, in);
      }
    });
  }
  if (db != nullptr) {
    for (int64_t o = 0; o < out; ++o) {
      S s = 0;
      for (int64_t t = 0; t < n; ++t) s += dy[t * out + o];
      db[o] += s;
    }
  }
}

#define LLMOPT_TRAIN_LINEAR_INSTANTIATE(S)                                                                   \
  template void linear_forward<S>(const S*, const S*, const S*, int64_t, int64_t, int64_t, S*, ThreadPool&); \
  template void linear_backward<S>(const S*, const S*, const S*, int64_t, int64_t, int64_t, S*, S*, S*,      \
                                   ThreadPool&);

LLMOPT_TRAIN_LINEAR_INSTANTIATE(float)
LLMOPT_TRAIN_LINEAR_INSTANTIATE(double)

}  // namespace llmopt::train
