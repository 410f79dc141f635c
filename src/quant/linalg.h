// Small dense linear algebra in double for GPTQ: Cholesky factorization, the inverse of a symmetric
// positive definite matrix and the upper Cholesky factor of that inverse. Matrices are row-major n x n.
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"

namespace llmopt::quant {

// In place: a = L with a_original = L L^T (L lower triangular, the strict upper triangle set to 0).
// An error if a is not (numerically) positive definite.
Status cholesky_lower(std::vector<double>& a, int64_t n);
// The inverse of a symmetric positive definite matrix, through its Cholesky factor.
Result<std::vector<double>> spd_inverse(const std::vector<double>& a, int64_t n);
// U upper triangular with a^-1 = U^T U (GPTQ's "Cholesky of H^-1", Algorithm 1 of the paper).
Result<std::vector<double>> upper_cholesky_of_inverse(const std::vector<double>& a, int64_t n);

}  // namespace llmopt::quant
