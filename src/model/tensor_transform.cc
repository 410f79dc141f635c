// Load-time tensor rewrites for importers: F32 copies, transposes and the rotate-half -> adjacent-pair
// Q/K row permutation. Shapes are checked here because they come from files.
#include "model/tensor_transform.h"

#include <algorithm>
#include <cstring>

#include "core/check.h"

namespace llmopt {
namespace {

float plain_to_f32(DType t, const uint8_t* p) {
  switch (t) {
    case DType::kF32: {
      float f;
      std::memcpy(&f, p, 4);
      return f;
    }
    case DType::kF16: {
      uint16_t h;
      std::memcpy(&h, p, 2);
      return fp16_to_fp32(h);
    }
    case DType::kBF16: {
      uint16_t h;
      std::memcpy(&h, p, 2);
      return bf16_to_fp32(h);
    }
    default:
      LLMOPT_CHECK_MSG(false, "plain_to_f32 on a non-plain type");
      return 0.0f;
  }
}

Status check_plain(const std::string& name, const TensorView& src) {
  if (!is_plain_float(src.type)) {
    return error("tensor '" + name + "' has type " + dtype_name(src.type) + "; expected f32, f16 or bf16");
  }
  const size_t elem = dtype_info(src.type).type_size;
  if (src.numel() < 0 || src.nbytes != static_cast<size_t>(src.numel()) * elem) {
    return error("tensor '" + name + "' byte size " + std::to_string(src.nbytes) + " does not match shape " +
                 shape_to_string(src.shape));
  }
  return ok_status();
}

}  // namespace

bool is_plain_float(DType t) { return t == DType::kF32 || t == DType::kF16 || t == DType::kBF16; }

Status add_f32_copy(MemoryWeightSource& dst, const std::string& name, const TensorView& src) {
  LLMOPT_RETURN_IF_ERROR(check_plain(name, src));
  const int64_t n = src.numel();
  const size_t elem = dtype_info(src.type).type_size;
  auto* out = reinterpret_cast<float*>(
      dst.add_owned_tensor(name, DType::kF32, src.shape, static_cast<size_t>(n) * 4));
  for (int64_t i = 0; i < n; ++i) out[i] = plain_to_f32(src.type, src.data + i * elem);
  return ok_status();
}

Status add_transposed(MemoryWeightSource& dst, const std::string& name, const TensorView& src) {
  if (src.shape.size() != 2) {
    return error("tensor '" + name + "' has shape " + shape_to_string(src.shape) + "; expected a 2-D matrix");
  }
  LLMOPT_RETURN_IF_ERROR(check_plain(name, src));
  const int64_t a = src.shape[0], b = src.shape[1];
  const size_t elem = dtype_info(src.type).type_size;
  uint8_t* out = dst.add_owned_tensor(name, src.type, {b, a}, src.nbytes);
  // NOTE: blocked so both sides stay in cache for large matrices.
  constexpr int64_t kTile = 32;
  for (int64_t i0 = 0; i0 < a; i0 += kTile) {
    for (int64_t j0 = 0; j0 < b; j0 += kTile) {
      const int64_t i1 = std::min(a, i0 + kTile), j1 = std::min(b, j0 + kTile);
      for (int64_t i = i0; i < i1; ++i) {
        for (int64_t j = j0; j < j1; ++j) {
          std::memcpy(out + (j * a + i) * elem, src.data + (i * b + j) * elem, elem);
        }
      }
    }
  }
  return ok_status();
}

Status add_rope_permuted(MemoryWeightSource& dst, const std::string& name, const TensorView& src,
                         int64_t n_head) {
  if (src.shape.size() != 2) {
    return error("tensor '" + name + "' has shape " + shape_to_string(src.shape) + "; expected a 2-D matrix");
  }
  const int64_t rows = src.shape[0];
  if (n_head <= 0 || rows % (2 * n_head) != 0) {
    return error("tensor '" + name + "' has " + std::to_string(rows) + " rows, not a multiple of 2 x " +
                 std::to_string(n_head) + " heads");
  }
  auto row_bytes = dtype_row_bytes(src.type, src.shape[1]);
  if (!row_bytes || *row_bytes * static_cast<size_t>(rows) != src.nbytes) {
    return error("tensor '" + name + "' byte size " + std::to_string(src.nbytes) + " does not match shape " +
                 shape_to_string(src.shape) + " of type " + dtype_name(src.type));
  }
  const int64_t head_dim = rows / n_head, half = head_dim / 2;
  uint8_t* out = dst.add_owned_tensor(name, src.type, src.shape, src.nbytes);
  for (int64_t h = 0; h < n_head; ++h) {
    for (int64_t i = 0; i < half; ++i) {
      for (int64_t j = 0; j < 2; ++j) {
        const int64_t to = h * head_dim + 2 * i + j;
        const int64_t from = h * head_dim + j * half + i;
        std::memcpy(out + to * *row_bytes, src.data + from * *row_bytes, *row_bytes);
      }
    }
  }
  return ok_status();
}

}  // namespace llmopt
