// Small helpers shared by the format readers (internal to formats/): overflow-checked size
// arithmetic, tensor byte sizes, and the natural alignment a typed view needs.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"

namespace llmopt::formats_internal {

inline bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_mul_overflow(a, b, out); }
inline bool checked_add(uint64_t a, uint64_t b, uint64_t* out) { return !__builtin_add_overflow(a, b, out); }

// Exact byte size of a tensor of `type` with `shape` (outermost first). Errors (no context) when an
// extent is negative, the innermost extent is not a multiple of the block size, or a product overflows.
Result<size_t> tensor_nbytes(DType type, const std::vector<int64_t>& shape);

// Alignment a pointer to elements of `type` must have for typed loads to be well defined:
// the largest power of two dividing the block's byte size, at most 8.
size_t natural_alignment(DType type);

// Quotes a name from a file for an error message, escaping control bytes and cutting it short.
std::string quote_name(const std::string& s);

}  // namespace llmopt::formats_internal
