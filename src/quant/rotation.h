// The rotations that `quantize --rotate` gives W8A8 weights (kernels/rotate.h applies them): the
// block size m for a row length, and a deterministic random orthogonal Q of order m.
#pragma once

#include <cstdint>
#include <vector>

#include "core/status.h"
#include "kernels/rotate.h"

namespace llmopt::quant {

using kernels::kMaxRotationBlock;  // the largest m the kernels (and the loader) accept

// m = the odd part of n (n = 2^k * m), so R = H_{2^k} (x) Q_m; an error when m > kMaxRotationBlock.
Result<int64_t> rotation_block(int64_t n);

// An m x m orthogonal matrix, row-major: Gram-Schmidt (twice, in double) on Gaussian rows from a
// fixed-seed generator, so the same (m, seed) gives the same matrix everywhere.
std::vector<float> random_orthogonal(int64_t m, uint64_t seed);

}  // namespace llmopt::quant
