// Cholesky factorization and SPD inverse (plain loops, double precision).
#include "quant/linalg.h"

#include <cmath>
#include <string>

namespace llmopt::quant {
namespace {

// sum over k < n of a[k] b[k], in four interleaved partial sums (independent chains the compiler can
// keep in vector registers; a single chain runs at one add per add latency).
double dot(const double* a, const double* b, int64_t n) {
  double s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0;
  int64_t k = 0;
  for (; k + 4 <= n; k += 4) {
    s0 += a[k] * b[k];
    s1 += a[k + 1] * b[k + 1];
    s2 += a[k + 2] * b[k + 2];
    s3 += a[k + 3] * b[k + 3];
  }
  for (; k < n; ++k) s0 += a[k] * b[k];
  return (s0 + s2) + (s1 + s3);
}

}  // namespace

Status cholesky_lower(std::vector<double>& a, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    double* aj = a.data() + j * n;
    const double d = aj[j] - dot(aj, aj, j);
    if (!(d > 0.0) || !std::isfinite(d)) {
      return error("matrix is not positive definite (pivot " + std::to_string(j) + " is " + std::to_string(d) +
                   ")");
    }
    const double ljj = std::sqrt(d);
    aj[j] = ljj;
    for (int64_t i = j + 1; i < n; ++i) {
      double* ai = a.data() + i * n;
      ai[j] = (ai[j] - dot(ai, aj, j)) / ljj;
    }
    for (int64_t k = j + 1; k < n; ++k) aj[k] = 0.0;
  }
  return ok_status();
}

Result<std::vector<double>> spd_inverse(const std::vector<double>& a, int64_t n) {
  std::vector<double> l = a;
  LLMOPT_RETURN_IF_ERROR(cholesky_lower(l, n));
  // li = L^-1 (lower triangular), row by row from L li = I:
  //   li[i][:] = -(sum over k < i of L[i][k] li[k][:]) / L[i][i], li[i][i] = 1 / L[i][i]
  // (accumulated as whole rows so that every access is contiguous).
  std::vector<double> li(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    const double* lr = l.data() + i * n;
    double* out = li.data() + i * n;
    for (int64_t k = 0; k < i; ++k) {
      const double v = lr[k];
      if (v == 0.0) continue;
      const double* lk = li.data() + k * n;
      for (int64_t j = 0; j <= k; ++j) out[j] += v * lk[j];
    }
    const double inv_d = 1.0 / lr[i];
    for (int64_t j = 0; j < i; ++j) out[j] = -out[j] * inv_d;
    out[i] = inv_d;
  }
  // a^-1 = L^-T L^-1: entry (i, j) = sum over k >= max(i, j) of li[k][i] li[k][j].
  std::vector<double> inv(static_cast<size_t>(n * n), 0.0);
  for (int64_t k = 0; k < n; ++k) {
    const double* lk = li.data() + k * n;
    for (int64_t i = 0; i <= k; ++i) {
      const double v = lk[i];
      if (v == 0.0) continue;
      double* dst = inv.data() + i * n;
      for (int64_t j = 0; j <= i; ++j) dst[j] += v * lk[j];
    }
  }
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < i; ++j) inv[j * n + i] = inv[i * n + j];
  }
  return inv;
}

Result<std::vector<double>> upper_cholesky_of_inverse(const std::vector<double>& a, int64_t n) {
  LLMOPT_ASSIGN_OR_RETURN(std::vector<double> inv, spd_inverse(a, n));
  LLMOPT_RETURN_IF_ERROR(cholesky_lower(inv, n));
  // U = L^T.
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = i + 1; j < n; ++j) {
      inv[i * n + j] = inv[j * n + i];
      inv[j * n + i] = 0.0;
    }
  }
  return inv;
}

}  // namespace llmopt::quant
