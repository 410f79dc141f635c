// The dense linear layer of training (declared in ops.h): y = x·Wᵀ + b and its backward.
// Plain cache-blocked loops over f32/f64; rows are split over the pool.
#include <vector>

#include "train/ops.h"

namespace llmopt::train {

namespace {

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
      const S* mk = m + k * cols;
      const S g0 = g[k], g1 = g[K + k], g2 = g[2 * K + k], g3 = g[3 * K + k];
      for (int64_t i = 0; i < cols; ++i) {
        const S mv = mk[i];
        c0[i] += g0 * mv;
        c1[i] += g1 * mv;
        c2[i] += g2 * mv;
        c3[i] += g3 * mv;
      }
    }
  }
  for (; t < end; ++t) {
    for (int64_t k = 0; k < K; ++k) axpy(a[t * K + k], m + k * cols, c + t * cols, cols);
  }
}

}  // namespace

template <class S>
void linear_forward(const S* x, const S* w, const S* b, int64_t n, int64_t in, int64_t out, S* y,
                    ThreadPool& pool) {
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
          const S* xt = x + t * in;
          const S g0 = g[0], g1 = g[1], g2 = g[2], g3 = g[3];
          for (int64_t i = 0; i < in; ++i) {
            const S xv = xt[i];
            w0[i] += g0 * xv;
            w1[i] += g1 * xv;
            w2[i] += g2 * xv;
            w3[i] += g3 * xv;
          }
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
