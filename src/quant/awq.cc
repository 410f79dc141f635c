// AWQ: the activation-aware scale search and the per-group clipping search.
#include "quant/awq.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>

#include "core/tensor.h"
#include "kernels/kernels.h"
#include "quant/awq_search.h"
#include "quant/output_error.h"

namespace llmopt::quant {

namespace {

std::vector<float> clip_ratio_list(const AwqOptions& opt) {
  std::vector<float> out;
  for (int k = 0;; ++k) {
    const float r = 1.0f - static_cast<float>(k) * opt.clip_step;
    if (r < opt.min_clip - 1e-6f || r <= 0.0f) break;
    out.push_back(r);
  }
  return out;
}

}  // namespace

Result<AwqResult> quantize_awq(const float* w, int64_t rows, int64_t cols, const float* x, int64_t n,
                               const AffineSpec& spec, const AwqOptions& opt) {
  LLMOPT_RETURN_IF_ERROR(validate_spec(spec, rows, cols));
  if (n <= 0 || x == nullptr) return error("empty calibration: AWQ needs at least one activation row");
  if (opt.grid < 1) return error("AWQ grid " + std::to_string(opt.grid) + " must be >= 1");
  if (opt.clip_search && !(opt.clip_step > 0.0f && opt.min_clip > 0.0f && opt.min_clip <= 1.0f)) {
    return error("AWQ clipping needs clip_step > 0 and min_clip in (0, 1]");
  }
  LLMOPT_RETURN_IF_ERROR(check_finite(w, rows, cols));
  LLMOPT_RETURN_IF_ERROR(check_finite(x, n, cols, "calibration activations"));

  std::unique_ptr<ThreadPool> own_pool;
  if (opt.pool == nullptr) own_pool = std::make_unique<ThreadPool>(1);
  OutputError meter(x, n, cols, opt.pool != nullptr ? *opt.pool : *own_pool);

  const std::vector<double> mean_abs = awq_search::column_mean_abs(x, n, cols);

  std::vector<float> ws(static_cast<size_t>(rows * cols));
  std::vector<float> d(static_cast<size_t>(rows * cols));
  // d = w - deq(Q(w · s)) / s for the given clipping ratios (nullptr: none); returns Q.
  auto quantize_scaled = [&](const std::vector<float>& s, const std::vector<float>* clips) -> Result<AffineTensor> {
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) ws[r * cols + c] = w[r * cols + c] * s[c];
    }
    Result<AffineTensor> t = clips != nullptr ? quantize_rtn_clipped(ws.data(), rows, cols, spec, *clips)
                                              : quantize_rtn(ws.data(), rows, cols, spec);
    if (!t.ok()) return t.status();
    dequantize(*t, d.data());
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) d[r * cols + c] = w[r * cols + c] - d[r * cols + c] / s[c];
    }
    return t;
  };

  // 1. Scale search.
  AwqResult best;
  best.output_error = -1.0;
  std::vector<float> s(static_cast<size_t>(cols));
  for (int k = 0; k <= opt.grid; ++k) {
    const float alpha = static_cast<float>(k) / static_cast<float>(opt.grid);
    awq_search::alpha_scales(mean_abs, alpha, s);
    LLMOPT_ASSIGN_OR_RETURN(AffineTensor t, quantize_scaled(s, nullptr));
    const double err = meter.total(d.data(), rows);
    if (k == 0) best.rtn_error = err;
    if (best.output_error < 0.0 || err < best.output_error) {
      best.output_error = err;
      best.alpha = alpha;
      best.scales = s;
      best.quantized = std::move(t);
    }
  }
  const int64_t groups = group_count(spec, rows, cols);
  best.clip_ratios.assign(static_cast<size_t>(groups), 1.0f);
  if (!opt.clip_search || spec.granularity == AffineSpec::kTensor) return best;

  // 2. Clipping search: every ratio is tried on all groups at once; each group keeps its best.
  const int64_t len = spec.granularity == AffineSpec::kChannel ? cols : spec.group_size;
  LLMOPT_ASSIGN_OR_RETURN(
      std::vector<float> clips,
      awq_search::best_clip_per_group(clip_ratio_list(opt), groups, [&](float ratio, std::vector<double>& err) {
        const std::vector<float> same(static_cast<size_t>(groups), ratio);
        LLMOPT_RETURN_IF_ERROR(quantize_scaled(best.scales, &same).status());
        meter.per_group(d.data(), rows, len, err);
        return ok_status();
      }));
  LLMOPT_ASSIGN_OR_RETURN(AffineTensor clipped, quantize_scaled(best.scales, &clips));
  const double clipped_err = meter.total(d.data(), rows);
  if (clipped_err < best.output_error) {
    best.output_error = clipped_err;
    best.quantized = std::move(clipped);
    best.clip_ratios = std::move(clips);
  }
  return best;
}

std::vector<float> awq_effective_weights(const AwqResult& r) {
  std::vector<float> out = dequantize(r.quantized);
  const int64_t cols = r.quantized.cols;
  for (int64_t i = 0; i < r.quantized.rows; ++i) {
    for (int64_t c = 0; c < cols; ++c) out[i * cols + c] /= r.scales[c];
  }
  return out;
}

}  // namespace llmopt::quant
