// See rotate.h.
#include "kernels/rotate.h"

#include <cmath>
#include <string>
#include <vector>

#include "core/check.h"

namespace llmopt::kernels {

Status check_rotation_shape(int64_t n, int64_t m) {
  if (m < 1 || n < 1 || n % m != 0) {
    return error("a rotation block of " + std::to_string(m) + " does not divide rows of " + std::to_string(n));
  }
  const int64_t p = n / m;
  if ((p & (p - 1)) != 0) {
    return error("rows of " + std::to_string(n) + " are " + std::to_string(p) + " blocks of " + std::to_string(m) +
                 "; the number of blocks must be a power of two");
  }
  return ok_status();
}

void rotate_rows(const float* q, int64_t m, const float* x, int64_t rows, int64_t n, float* y, bool inverse) {
  LLMOPT_CHECK(m >= 1 && n % m == 0);
  const int64_t p = n / m;
  LLMOPT_CHECK((p & (p - 1)) == 0);
  const float norm = 1.0f / std::sqrt(static_cast<float>(p));
  thread_local std::vector<float> z;
  if (z.size() < static_cast<size_t>(n)) z.resize(static_cast<size_t>(n));
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x + r * n;
    float* zr = z.data();
    // z[a][d] = sum_b x[a][b] Q[b][d] (or Q[d][b] for the inverse).
    for (int64_t a = 0; a < p; ++a) {
      float* za = zr + a * m;
      for (int64_t d = 0; d < m; ++d) za[d] = 0.0f;
      for (int64_t b = 0; b < m; ++b) {
        const float xv = xr[a * m + b];
        if (!inverse) {
          const float* qb = q + b * m;
          for (int64_t d = 0; d < m; ++d) za[d] += xv * qb[d];
        } else {
          for (int64_t d = 0; d < m; ++d) za[d] += xv * q[d * m + b];
        }
      }
    }
    // The Hadamard transform along a (in place, butterflies of width h), then 1/sqrt(p).
    for (int64_t h = 1; h < p; h *= 2) {
      for (int64_t a0 = 0; a0 < p; a0 += 2 * h) {
        for (int64_t a = a0; a < a0 + h; ++a) {
          float* u = zr + a * m;
          float* v = zr + (a + h) * m;
          for (int64_t d = 0; d < m; ++d) {
            const float s = u[d], t = v[d];
            u[d] = s + t;
            v[d] = s - t;
          }
        }
      }
    }
    float* yr = y + r * n;
    for (int64_t i = 0; i < n; ++i) yr[i] = zr[i] * norm;
  }
}

}  // namespace llmopt::kernels
