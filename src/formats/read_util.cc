// Shared reader helpers (see read_util.h).
#include "formats/read_util.h"

#include <limits>

#include "core/tensor.h"

namespace llmopt::formats_internal {

Result<size_t> tensor_nbytes(DType type, const std::vector<int64_t>& shape) {
  const DTypeInfo& info = dtype_info(type);
  // NOTE: extents of 0 count as 1 in the overflow check, so a shape such as [0, 2^62, 2^62]
  // is rejected rather than accepted as empty: consumers may size rows from single extents.
  uint64_t numel = 1, nominal = 1;
  for (int64_t d : shape) {
    if (d < 0) return error("negative dimension " + std::to_string(d));
    const uint64_t ud = static_cast<uint64_t>(d);
    if (!checked_mul(nominal, ud == 0 ? 1 : ud, &nominal) ||
        nominal > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
      return error("element count of shape " + shape_to_string(shape) + " overflows");
    }
    numel *= ud;
  }
  const int64_t inner = shape.empty() ? 1 : shape.back();
  if (inner % info.block_size != 0) {
    return error("innermost dimension " + std::to_string(inner) + " is not a multiple of the " + info.name +
                 " block size " + std::to_string(info.block_size));
  }
  // numel <= nominal, both multiples of the block size (or numel zero): bytes <= nominal_bytes.
  uint64_t nominal_bytes = 0;
  if (!checked_mul(nominal / static_cast<uint64_t>(info.block_size), info.type_size, &nominal_bytes) ||
      nominal_bytes > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
    return error("byte size of shape " + shape_to_string(shape) + " overflows");
  }
  const uint64_t bytes = numel / static_cast<uint64_t>(info.block_size) * info.type_size;
  return static_cast<size_t>(bytes);
}

size_t natural_alignment(DType type) {
  const size_t ts = dtype_info(type).type_size;
  size_t a = 1;
  while (a < 8 && ts % (a * 2) == 0) a *= 2;
  return a;
}

std::string quote_name(const std::string& s) {
  constexpr size_t kMax = 80;
  std::string out = "'";
  for (size_t i = 0; i < s.size() && i < kMax; ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c < 0x20 || c == 0x7f) {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    } else {
      out += static_cast<char>(c);
    }
  }
  if (s.size() > kMax) out += "...";
  return out + "'";
}

}  // namespace llmopt::formats_internal
