// TensorView: a non-owning typed view of tensor bytes (usually inside an mmap'd model file).
// Shape is row-major, outermost first: a weight is [n_out, n_in] and its rows are contiguous.
// (GGUF stores dimensions innermost first; readers reverse them.)
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/dtype.h"

namespace llmopt {

struct TensorView {
  DType type = DType::kF32;
  std::vector<int64_t> shape;      // outermost first
  const uint8_t* data = nullptr;   // nullptr means "absent"
  size_t nbytes = 0;
  // Extension types only (DType::kI8Ch): one f32 scale per row, and the static per-tensor activation
  // scale (0: activations are quantized per token at run time). Set by the model loader from the
  // weight's companion tensors; the view does not own them.
  const float* row_scale = nullptr;
  float act_scale = 0.0f;
  // Optional rotation of the input (kernels/rotate.h): rot is Q [rot_m][rot_m]; the codes hold W R and
  // each activation row is multiplied by R before it is quantized. nullptr: none.
  const float* rot = nullptr;
  int64_t rot_m = 0;

  bool present() const { return data != nullptr; }
  // Bytes of the tensor and of the companion scales attached to it (what a model spends on it).
  size_t total_bytes() const {
    return nbytes + (row_scale != nullptr ? static_cast<size_t>(rows()) * sizeof(float) : 0) +
           (act_scale > 0.0f ? sizeof(float) : 0) +
           (rot != nullptr ? static_cast<size_t>(rot_m * rot_m) * sizeof(float) : 0);
  }
  int64_t numel() const {
    int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
  }
  int64_t rows() const { return shape.empty() ? 1 : (shape.back() == 0 ? 0 : numel() / shape.back()); }
  int64_t cols() const { return shape.empty() ? 1 : shape.back(); }
  size_t row_bytes() const { return rows() == 0 ? 0 : nbytes / static_cast<size_t>(rows()); }
  const uint8_t* row(int64_t r) const { return data + static_cast<size_t>(r) * row_bytes(); }
  const float* f32() const { return reinterpret_cast<const float*>(data); }
};

// A view of a row-major f32 matrix [rows][cols] held elsewhere (to pass plain arrays to the matmul
// kernels as the weight operand).
inline TensorView f32_matrix_view(const float* d, int64_t rows, int64_t cols) {
  TensorView v;
  v.type = DType::kF32;
  v.shape = {rows, cols};
  v.data = reinterpret_cast<const uint8_t*>(d);
  v.nbytes = static_cast<size_t>(rows * cols) * sizeof(float);
  return v;
}

std::string shape_to_string(const std::vector<int64_t>& shape);

// Owning bytes for tensors that are computed at load time (transposed, permuted, converted).
// 64-byte aligned.
class Storage {
 public:
  explicit Storage(size_t nbytes);
  uint8_t* data() { return data_.get(); }
  const uint8_t* data() const { return data_.get(); }
  size_t size() const { return size_; }

 private:
  struct Free {
    void operator()(uint8_t* p) const;
  };
  std::unique_ptr<uint8_t, Free> data_;
  size_t size_;
};

}  // namespace llmopt
