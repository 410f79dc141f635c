// See rotate.h.
#include "kernels/rotate.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "core/check.h"

namespace llmopt::kernels {

Status check_rotation_shape(int64_t n, int64_t m) {
  if (m < 1 || n < 1 || n % m != 0) {
    return error("a rotation block of " + std::to_string(m) + " does not divide rows of " + std::to_string(n));
  }
  if (m > kMaxRotationBlock) {
    return error("a rotation block of " + std::to_string(m) + " is larger than " + std::to_string(kMaxRotationBlock));
  }
  const int64_t p = n / m;
  if ((p & (p - 1)) != 0) {
    return error("rows of " + std::to_string(n) + " are " + std::to_string(p) + " blocks of " + std::to_string(m) +
                 "; the number of blocks must be a power of two");
  }
  return ok_status();
}

namespace {

// z[a][d] = sum_b x[a][b] C[b][d] for the p rows a of length m (C = Q / sqrt(p), or its transpose).
// M > 0: m known at compile time (the loops unroll: m is 1 or 3 for most models' rows).
template <int M>
void times_q(const float* __restrict x, const float* __restrict c, int64_t p, int64_t m_rt, float* __restrict z) {
  const int64_t m = M > 0 ? M : m_rt;
  for (int64_t a = 0; a < p; ++a) {
    float* za = z + a * m;
    const float* xa = x + a * m;
    for (int64_t d = 0; d < m; ++d) za[d] = 0.0f;
    for (int64_t b = 0; b < m; ++b) {
      const float xv = xa[b];
      const float* cb = c + b * m;
      for (int64_t d = 0; d < m; ++d) za[d] += xv * cb[d];
    }
  }
}

// The Walsh-Hadamard transform over a of z[a][.]: at width h the blocks a0..a0+h and a0+h..a0+2h are
// contiguous runs of h * m floats, so the butterflies are long vector loops from h * m >= 16 on.
void hadamard(float* z, int64_t p, int64_t m) {
  for (int64_t h = 1; h < p; h *= 2) {
    const int64_t run = h * m;
    for (int64_t a0 = 0; a0 < p; a0 += 2 * h) {
      float* __restrict u = z + a0 * m;
      float* __restrict v = u + run;
      for (int64_t i = 0; i < run; ++i) {
        const float s = u[i], t = v[i];
        u[i] = s + t;
        v[i] = s - t;
      }
    }
  }
}

}  // namespace

void rotate_rows(const float* q, int64_t m, const float* x, int64_t rows, int64_t n, float* y, bool inverse) {
  LLMOPT_CHECK(m >= 1 && n % m == 0);
  const int64_t p = n / m;
  LLMOPT_CHECK((p & (p - 1)) == 0);
  const float norm = 1.0f / std::sqrt(static_cast<float>(p));
  // C = Q / sqrt(p) (or Q^T / sqrt(p)): the Hadamard normalization folded into the small product.
  thread_local std::vector<float> buf;
  if (buf.size() < static_cast<size_t>(m * m + n)) buf.resize(static_cast<size_t>(m * m + n));
  float* c = buf.data();
  float* z = buf.data() + m * m;
  for (int64_t b = 0; b < m; ++b) {
    for (int64_t d = 0; d < m; ++d) c[b * m + d] = (inverse ? q[d * m + b] : q[b * m + d]) * norm;
  }
  for (int64_t r = 0; r < rows; ++r) {
    switch (m) {
      case 1: times_q<1>(x + r * n, c, p, m, z); break;
      case 3: times_q<3>(x + r * n, c, p, m, z); break;
      case 5: times_q<5>(x + r * n, c, p, m, z); break;
      case 7: times_q<7>(x + r * n, c, p, m, z); break;
      default: times_q<0>(x + r * n, c, p, m, z); break;
    }
    hadamard(z, p, m);
    std::copy(z, z + n, y + r * n);
  }
}

}  // namespace llmopt::kernels
