// Reference matrix product y[m][n_out] = x[m][k] . W[n_out][k] for weights of any dequantizable
// type. Output columns (weight rows) are split over the thread pool; each thread dequantizes a small
// tile of weight rows once into a per-thread buffer and dots it against all m input rows, so a
// prefill of m tokens does not dequantize the weights m times.
#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/check.h"
#include "kernels/ref/ref.h"
#include "kernels/repack.h"
#include "kernels/type_traits.h"

namespace llmopt::kernels::ref {
namespace {

// Dequantized weight rows per tile: about 64 KiB of f32, at most 16 rows.
int64_t tile_rows(int64_t k) { return std::clamp<int64_t>(16384 / std::max<int64_t>(k, 1), 1, 16); }

}  // namespace

void matmul_bias(const TensorView& w, const float* bias, const float* x, int64_t m, float* y,
                 ThreadPool& pool) {
  LLMOPT_CHECK(w.present() && w.shape.size() == 2);
  const int64_t n_out = w.shape[0];
  const int64_t k = w.shape[1];
  const TypeTraits* traits = find_type_traits(w.type);
  const bool r16 = is_r16(w.type);  // rows regrouped by 16 (repack.h)
  LLMOPT_CHECK_MSG(r16 || (traits != nullptr && traits->dequantize_row != nullptr),
                   "matmul: weight type cannot be dequantized");
  const auto row_bytes = dtype_row_bytes(w.type, k);
  LLMOPT_CHECK_MSG(row_bytes.has_value(), "matmul: row length is not a multiple of the block size");
  LLMOPT_CHECK(*row_bytes * static_cast<size_t>(n_out) <= w.nbytes);
  if (m <= 0 || n_out <= 0) return;
  const bool f32_direct = w.type == DType::kF32 && reinterpret_cast<uintptr_t>(w.data) % alignof(float) == 0;
  const int64_t tile = tile_rows(k);

  pool.parallel_for(n_out, [&](int64_t begin, int64_t end, int) {
    thread_local std::vector<float> buf;
    if (!f32_direct && buf.size() < static_cast<size_t>(tile * k)) buf.resize(static_cast<size_t>(tile * k));
    const float* rows[16];
    for (int64_t r0 = begin; r0 < end; r0 += tile) {
      const int64_t nr = std::min(tile, end - r0);
      for (int64_t t = 0; t < nr; ++t) {
        const uint8_t* src = w.data + static_cast<size_t>(r0 + t) * *row_bytes;
        if (f32_direct) {
          rows[t] = reinterpret_cast<const float*>(src);
        } else if (r16) {
          dequantize_r16_row(w.type, w.data, w.rows(), k, r0 + t, buf.data() + t * k);
          rows[t] = buf.data() + t * k;
        } else {
          traits->dequantize_row(src, buf.data() + t * k, k);
          rows[t] = buf.data() + t * k;
        }
      }
      for (int64_t i = 0; i < m; ++i) {
        const float* xi = x + i * k;
        float* yi = y + i * n_out + r0;
        for (int64_t t = 0; t < nr; ++t) {
          const float v = dot_f32(xi, rows[t], k);
          yi[t] = bias != nullptr ? v + bias[r0 + t] : v;
        }
      }
    }
  });
}

}  // namespace llmopt::kernels::ref
