// Orthogonal rotation of activation rows, R = (H_p / sqrt(p)) (x) Q: H_p the Sylvester Hadamard matrix of
// order p (a power of two), Q an orthogonal m x m matrix, n = p * m. An i8_ch weight may carry one
// (docs/FORMATS.md, "<name>.rot"): its codes then hold W R, and the product rotates each activation row
// before quantizing it, so (x R)(W R)^T = x W^T. Spreading an outlier channel over all n channels is what
// lets one static activation scale cover the input of ffn_down (QuaRot's online rotation). Cost per row:
// n * (m + log2 p) multiply-adds.
#pragma once

#include <cstdint>

#include "core/status.h"

namespace llmopt::kernels {

// The largest rotation block m: the product with Q costs m multiply-adds per element (and the loader's
// orthogonality check m^3), so a file may not ask for more.
inline constexpr int64_t kMaxRotationBlock = 256;

// OK when n = p * m with p a power of two (1 <= m <= kMaxRotationBlock).
Status check_rotation_shape(int64_t n, int64_t m);

// y[r] = x[r] R for rows r < rows (each of n elements); inverse = true applies R^T = R^-1 instead.
// x and y may be the same buffer. Element (a*m + b) of a row is (Hadamard index a, Q index b).
void rotate_rows(const float* q, int64_t m, const float* x, int64_t rows, int64_t n, float* y, bool inverse = false);

}  // namespace llmopt::kernels
