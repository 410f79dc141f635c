// GGUF-grid quantization: fp16 group parameters, RTN, GPTQ and packing into Q4_0 / Q4_1 / Q8_0 blocks.
#include "quant/gguf_grid.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <memory>
#include <string>

#include "core/check.h"
#include "kernels/kernels.h"
#include "quant/awq_search.h"
#include "quant/output_error.h"
#include "kernels/ref/blocks.h"
#include "quant/affine.h"
#include "quant/gptq_core.h"
#include "quant/linalg.h"

namespace llmopt::quant {

namespace {

float to_half(float x) { return fp16_to_fp32(fp32_to_fp16(x)); }

int64_t group_len_of(const GridSpec& spec, int64_t cols) { return spec.group_size == 0 ? cols : spec.group_size; }

}  // namespace

Result<GridType> grid_for(int bits, bool symmetric) {
  if (bits == 4) return symmetric ? GridType::kQ4_0 : GridType::kQ4_1;
  if (bits == 8) {
    if (symmetric) return GridType::kQ8_0;
    return error("8-bit asymmetric has no GGUF block; use --sym");
  }
  return error("--bits " + std::to_string(bits) + " is not supported (use 4 or 8)");
}

DType grid_dtype(GridType t) {
  switch (t) {
    case GridType::kQ4_0: return DType::kQ4_0;
    case GridType::kQ4_1: return DType::kQ4_1;
    case GridType::kQ8_0: return DType::kQ8_0;
  }
  return DType::kQ4_0;
}

const char* grid_name(GridType t) { return dtype_name(grid_dtype(t)); }

int32_t grid_code_min(GridType t) {
  switch (t) {
    case GridType::kQ4_0: return -8;
    case GridType::kQ4_1: return 0;
    case GridType::kQ8_0: return -127;
  }
  return 0;
}

int32_t grid_code_max(GridType t) {
  switch (t) {
    case GridType::kQ4_0: return 7;
    case GridType::kQ4_1: return 15;
    case GridType::kQ8_0: return 127;
  }
  return 0;
}

GridParams grid_group_params(GridType t, const float* w, int64_t n, float clip_ratio) {
  GridParams p;
  switch (t) {
    case GridType::kQ4_0: {
      float amax = 0.0f, mx = 0.0f;
      for (int64_t i = 0; i < n; ++i) {
        if (std::fabs(w[i]) > amax) {
          amax = std::fabs(w[i]);
          mx = w[i];
        }
      }
      p.d = to_half(clip_ratio * mx / -8.0f);
      break;
    }
    case GridType::kQ4_1: {
      float lo = w[0], hi = w[0];
      for (int64_t i = 1; i < n; ++i) {
        lo = std::min(lo, w[i]);
        hi = std::max(hi, w[i]);
      }
      p.d = to_half(clip_ratio * (hi - lo) / 15.0f);
      p.m = to_half(clip_ratio * lo);
      break;
    }
    case GridType::kQ8_0: {
      float amax = 0.0f;
      for (int64_t i = 0; i < n; ++i) amax = std::max(amax, std::fabs(w[i]));
      p.d = to_half(clip_ratio * amax / 127.0f);
      break;
    }
  }
  return p;
}

GridParams grid_search_group_params(GridType t, const float* w, int64_t n, const float* importance) {
  GridParams best;
  double best_err = -1.0;
  for (int k = 0; k <= kGridClipSteps; ++k) {
    const GridParams p = grid_group_params(t, w, n, 1.0f - kGridClipStep * static_cast<float>(k));
    double e = 0.0;
    for (int64_t i = 0; i < n; ++i) {
      const double d = static_cast<double>(w[i]) - grid_value(grid_quantize_value(w[i], p, t), p, t);
      e += (importance != nullptr ? static_cast<double>(importance[i]) : 1.0) * d * d;
    }
    if (best_err < 0.0 || e < best_err) {  // ties keep the larger range
      best_err = e;
      best = p;
    }
  }
  return best;
}

int32_t grid_quantize_value(float w, GridParams p, GridType t) {
  if (p.d == 0.0f) return 0;
  const float x = std::nearbyint((w - p.m) / p.d);
  const float lo = static_cast<float>(grid_code_min(t)), hi = static_cast<float>(grid_code_max(t));
  return static_cast<int32_t>(std::clamp(x, lo, hi));
}

Status validate_grid(const GridSpec& spec, int64_t rows, int64_t cols) {
  if (rows <= 0 || cols <= 0) return error("empty matrix");
  if (spec.group_size < 0 || spec.group_size % 32 != 0) {
    return error("group size " + std::to_string(spec.group_size) + " must be a multiple of 32");
  }
  if (cols % 32 != 0) {
    return error("rows of " + std::to_string(cols) + " elements are not a multiple of the GGUF block size 32");
  }
  if (spec.group_size > 0 && cols % spec.group_size != 0) {
    return error("group size " + std::to_string(spec.group_size) + " does not divide rows of " +
                 std::to_string(cols) + " elements");
  }
  return ok_status();
}

std::vector<uint8_t> GridTensor::pack() const {
  const DType dt = grid_dtype(spec.type);
  const size_t block_bytes = dtype_info(dt).type_size;
  const int64_t nb = rows * cols / 32;
  std::vector<uint8_t> out(static_cast<size_t>(nb) * block_bytes);
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t b = 0; b < cols / 32; ++b) {
      uint8_t* dst = out.data() + static_cast<size_t>(r * (cols / 32) + b) * block_bytes;
      const int16_t* q = codes.data() + r * cols + b * 32;
      const GridParams p = params_of(r, b * 32);  // repeated in every 32-block of a longer group
      switch (spec.type) {
        case GridType::kQ4_0: {
          kernels::BlockQ4_0 blk;
          blk.d = fp32_to_fp16(p.d);
          for (int j = 0; j < 16; ++j) {
            blk.qs[j] = static_cast<uint8_t>((q[j] + 8) | ((q[j + 16] + 8) << 4));
          }
          std::memcpy(dst, &blk, sizeof blk);
          break;
        }
        case GridType::kQ4_1: {
          kernels::BlockQ4_1 blk;
          blk.d = fp32_to_fp16(p.d);
          blk.m = fp32_to_fp16(p.m);
          for (int j = 0; j < 16; ++j) blk.qs[j] = static_cast<uint8_t>(q[j] | (q[j + 16] << 4));
          std::memcpy(dst, &blk, sizeof blk);
          break;
        }
        case GridType::kQ8_0: {
          kernels::BlockQ8_0 blk;
          blk.d = fp32_to_fp16(p.d);
          for (int j = 0; j < 32; ++j) blk.qs[j] = static_cast<int8_t>(q[j]);
          std::memcpy(dst, &blk, sizeof blk);
          break;
        }
      }
    }
  }
  return out;
}

std::vector<uint8_t> pack_q4_1_g128(const GridTensor& t) {
  LLMOPT_CHECK(t.spec.type == GridType::kQ4_1 && t.cols % 128 == 0 && t.group_len() % 128 == 0);
  const std::vector<uint8_t> q41 = t.pack();  // rows * cols / 32 Q4_1 blocks
  const int64_t n128 = t.rows * t.cols / 128;
  std::vector<uint8_t> out(static_cast<size_t>(n128) * sizeof(kernels::BlockQ4_1G128));
  for (int64_t g = 0; g < n128; ++g) {
    kernels::BlockQ4_1G128 blk;
    for (int s = 0; s < 4; ++s) {
      kernels::BlockQ4_1 b;
      std::memcpy(&b, q41.data() + static_cast<size_t>(4 * g + s) * sizeof b, sizeof b);
      if (s == 0) {
        blk.d = b.d;
        blk.m = b.m;
      }
      LLMOPT_CHECK(b.d == blk.d && b.m == blk.m);  // the group's parameters, repeated
      std::memcpy(blk.qs + 16 * s, b.qs, 16);
    }
    std::memcpy(out.data() + static_cast<size_t>(g) * sizeof blk, &blk, sizeof blk);
  }
  return out;
}

std::vector<float> GridTensor::dequantize() const {
  std::vector<float> out(static_cast<size_t>(rows * cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (int64_t c = 0; c < cols; ++c) out[r * cols + c] = grid_value(codes[r * cols + c], params_of(r, c), spec.type);
  }
  return out;
}

Result<GridTensor> grid_quantize_rtn(const float* w, int64_t rows, int64_t cols, const GridSpec& spec,
                                     const std::vector<float>* clip_ratios) {
  LLMOPT_RETURN_IF_ERROR(validate_grid(spec, rows, cols));
  LLMOPT_RETURN_IF_ERROR(check_finite(w, rows, cols));
  GridTensor t;
  t.spec = spec;
  t.rows = rows;
  t.cols = cols;
  const int64_t len = group_len_of(spec, cols), gpr = cols / len;
  if (clip_ratios != nullptr && static_cast<int64_t>(clip_ratios->size()) != rows * gpr) {
    return error("expected " + std::to_string(rows * gpr) + " clip ratios, got " +
                 std::to_string(clip_ratios->size()));
  }
  t.codes.resize(static_cast<size_t>(rows * cols));
  t.params.resize(static_cast<size_t>(rows * gpr));
  for (int64_t g = 0; g < rows * gpr; ++g) {
    const float* wg = w + g * len;  // groups are contiguous, row-major
    const GridParams p = grid_group_params(spec.type, wg, len, clip_ratios ? (*clip_ratios)[g] : 1.0f);
    t.params[g] = p;
    for (int64_t i = 0; i < len; ++i) t.codes[g * len + i] = static_cast<int16_t>(grid_quantize_value(wg[i], p, spec.type));
  }
  return t;
}

Result<GridTensor> grid_quantize_gptq(const float* w, int64_t rows, int64_t cols, const std::vector<float>& h,
                                      const GridSpec& spec, const GridGptqOptions& opt) {
  LLMOPT_RETURN_IF_ERROR(validate_grid(spec, rows, cols));
  LLMOPT_RETURN_IF_ERROR(check_finite(w, rows, cols));
  if (static_cast<int64_t>(h.size()) != cols * cols) {
    return error("Hessian has " + std::to_string(h.size()) + " values, expected " + std::to_string(cols) + " x " +
                 std::to_string(cols));
  }
  if (!(opt.damp_percent >= 0.0) || !std::isfinite(opt.damp_percent)) return error("damp_percent must be >= 0");
  LLMOPT_RETURN_IF_ERROR(check_finite(h.data(), cols, cols, "Hessian values"));
  const GridType type = spec.type;

  auto prep = gptq_prepare(w, rows, cols, h, opt.damp_percent, opt.act_order);
  if (!prep.ok()) return prep.status();
  const std::vector<float>& wz = prep->w;
  const std::vector<int64_t>& perm = prep->perm;
  const std::vector<float>& u = prep->u;

  GridTensor t;
  t.spec = spec;
  t.rows = rows;
  t.cols = cols;
  const int64_t len = group_len_of(spec, cols), gpr = cols / len;
  const bool per_channel = spec.group_size == 0;
  // Parameters fixed before the loop: per channel from the row, and with act-order ("static groups")
  // every group's from its own original columns. Otherwise a group's parameters come from its
  // error-updated weights when the sweep reaches its first column.
  const bool static_params = per_channel || opt.act_order;
  t.codes.resize(static_cast<size_t>(rows * cols));
  t.params.resize(static_cast<size_t>(rows * gpr));
  // The scale search weighs column j's squared rounding error by 1 / U_jj^2, the weight GPTQ's own
  // objective gives it (U_jj^2 = [H_F^-1]_jj, H_F the Hessian of the columns not yet quantized):
  // importance in visiting order, and the same values in original column order for static parameters.
  std::vector<float> imp_visit(static_cast<size_t>(cols)), imp_orig(static_cast<size_t>(cols));
  for (int64_t j = 0; j < cols; ++j) {
    const float ujj = u[j * cols + j];
    imp_visit[j] = 1.0f / (ujj * ujj);
    imp_orig[perm[j]] = imp_visit[j];
  }
  auto params_of = [&](const float* wg, const float* imp) {
    return opt.scale_search ? grid_search_group_params(type, wg, len, imp) : grid_group_params(type, wg, len);
  };
  if (static_params) {
    for (int64_t g = 0; g < rows * gpr; ++g) t.params[g] = params_of(wz.data() + g * len, imp_orig.data() + (g % gpr) * len);
  }
  // Without act-order, lazy blocks are whole groups, so a group's parameters see its fully updated
  // weights.
  int64_t block = std::max<int64_t>(opt.block_size, 1);
  if (!static_params) block = (block + len - 1) / len * len;
  block = std::min(block, cols);

  auto run_rows = [&](int64_t r0, int64_t r1, int) {
    std::vector<float> wr(static_cast<size_t>(cols));
    std::vector<float> err(static_cast<size_t>(block));
    for (int64_t r = r0; r < r1; ++r) {
      for (int64_t p = 0; p < cols; ++p) wr[p] = wz[r * cols + perm[p]];
      GridParams cur;
      gptq_sweep_row(wr.data(), u.data(), cols, block, err.data(), [&](int64_t j, int64_t, int64_t, const float*) {
        const int64_t c = perm[j];
        if (static_params) {
          cur = t.params[r * gpr + c / len];
        } else if (j % len == 0) {
          cur = params_of(wr.data() + j, imp_visit.data() + j);
          t.params[r * gpr + j / len] = cur;
        }
        const int32_t q = grid_quantize_value(wr[j], cur, type);
        t.codes[r * cols + c] = static_cast<int16_t>(q);
        return grid_value(q, cur, type);
      });
    }
  };
  if (opt.pool != nullptr && opt.pool->n_threads() > 1) {
    opt.pool->parallel_for(rows, run_rows);
  } else {
    run_rows(0, rows, 0);
  }
  return t;
}

Result<GridAwqResult> grid_quantize_awq(const float* w, int64_t rows, int64_t cols, const float* x, int64_t n,
                                        const GridSpec& spec, const GridAwqOptions& opt) {
  LLMOPT_RETURN_IF_ERROR(validate_grid(spec, rows, cols));
  LLMOPT_RETURN_IF_ERROR(check_finite(w, rows, cols));
  if (n <= 0 || x == nullptr) return error("empty calibration: AWQ needs at least one activation row");
  if (opt.grid < 1) return error("AWQ grid must be >= 1");
  if (opt.clip_search && !(opt.clip_step > 0.0f && opt.min_clip > 0.0f && opt.min_clip <= 1.0f)) {
    return error("AWQ clipping needs clip_step > 0 and min_clip in (0, 1]");
  }
  LLMOPT_RETURN_IF_ERROR(check_finite(x, n, cols, "calibration activations"));
  std::unique_ptr<ThreadPool> own_pool;
  if (opt.pool == nullptr) own_pool = std::make_unique<ThreadPool>(1);
  OutputError meter(x, n, cols, opt.pool != nullptr ? *opt.pool : *own_pool);

  const std::vector<double> mean_abs = awq_search::column_mean_abs(x, n, cols);

  std::vector<float> ws(static_cast<size_t>(rows * cols)), d(static_cast<size_t>(rows * cols));
  // d = w - deq(Q(w s)) / s.
  auto quantize_scaled = [&](const std::vector<float>& s, const std::vector<float>* clips) -> Result<GridTensor> {
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) ws[r * cols + c] = w[r * cols + c] * s[c];
    }
    Result<GridTensor> t = grid_quantize_rtn(ws.data(), rows, cols, spec, clips);
    if (!t.ok()) return t.status();
    const std::vector<float> deq = t->dequantize();
    for (int64_t r = 0; r < rows; ++r) {
      for (int64_t c = 0; c < cols; ++c) d[r * cols + c] = w[r * cols + c] - deq[r * cols + c] / s[c];
    }
    return t;
  };

  GridAwqResult best;
  best.output_error = -1.0;
  best.by_scale_error = static_cast<bool>(opt.scale_error);
  std::vector<float> s(static_cast<size_t>(cols)), w_eff;
  for (int k = 0; k <= (opt.scale_search ? opt.grid : 0); ++k) {
    const float alpha = static_cast<float>(k) / static_cast<float>(opt.grid);
    awq_search::alpha_scales(mean_abs, alpha, s);
    if (k == 0) std::fill(s.begin(), s.end(), 1.0f);
    LLMOPT_ASSIGN_OR_RETURN(GridTensor t, quantize_scaled(s, nullptr));
    double err = 0.0;
    if (opt.scale_error) {
      w_eff.resize(d.size());
      for (size_t i = 0; i < d.size(); ++i) w_eff[i] = w[i] - d[i];
      LLMOPT_ASSIGN_OR_RETURN(err, opt.scale_error(w_eff));
    } else {
      err = meter.total(d.data(), rows);
    }
    if (k == 0) best.rtn_error = err;
    if (best.output_error < 0.0 || err < best.output_error) {
      best.output_error = err;
      best.alpha = alpha;
      best.scales = s;
      best.quantized = std::move(t);
    }
  }
  if (!opt.clip_search) return best;
  // The clipping is kept only if it lowers the layer's own output error.
  double unclipped_err = best.output_error;
  if (opt.scale_error) {
    LLMOPT_RETURN_IF_ERROR(quantize_scaled(best.scales, nullptr).status());
    unclipped_err = meter.total(d.data(), rows);
  }

  const int64_t len = group_len_of(spec, cols);
  const int64_t groups = rows * (cols / len);
  std::vector<float> ratios;
  for (float ratio = 1.0f; ratio >= opt.min_clip - 1e-6f; ratio -= opt.clip_step) ratios.push_back(ratio);
  LLMOPT_ASSIGN_OR_RETURN(
      std::vector<float> clips,
      awq_search::best_clip_per_group(ratios, groups, [&](float ratio, std::vector<double>& err) {
        const std::vector<float> same(static_cast<size_t>(groups), ratio);
        LLMOPT_RETURN_IF_ERROR(quantize_scaled(best.scales, &same).status());
        meter.per_group(d.data(), rows, len, err);
        return ok_status();
      }));
  LLMOPT_ASSIGN_OR_RETURN(GridTensor clipped, quantize_scaled(best.scales, &clips));
  const double clipped_err = meter.total(d.data(), rows);
  if (clipped_err < unclipped_err) {
    if (!opt.scale_error) best.output_error = clipped_err;
    best.quantized = std::move(clipped);
  }
  return best;
}

}  // namespace llmopt::quant
