// GPTQ: Hessian preparation (dead columns, act-order permutation, dampening, Cholesky of the inverse)
// and the per-row column loop with lazy block updates.
#include "quant/gptq.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>

#include "quant/gptq_core.h"
#include "quant/linalg.h"

namespace llmopt::quant {

namespace {

Status check_inputs(const float* w, int64_t rows, int64_t cols, const std::vector<float>& h,
                    const AffineSpec& spec, const GptqOptions& opt) {
  LLMOPT_RETURN_IF_ERROR(validate_spec(spec, rows, cols));
  if (h.empty()) return error("empty Hessian (no calibration data)");
  if (static_cast<int64_t>(h.size()) != cols * cols) {
    return error("Hessian has " + std::to_string(h.size()) + " values, expected " + std::to_string(cols) + " x " +
                 std::to_string(cols) + " for " + std::to_string(cols) + " input columns");
  }
  if (!(opt.damp_percent >= 0.0) || !std::isfinite(opt.damp_percent)) {
    return error("damp_percent " + std::to_string(opt.damp_percent) + " must be a finite value >= 0");
  }
  if (opt.block_size < 1) return error("block size " + std::to_string(opt.block_size) + " must be >= 1");
  LLMOPT_RETURN_IF_ERROR(check_finite(w, rows, cols));
  LLMOPT_RETURN_IF_ERROR(check_finite(h.data(), cols, cols, "Hessian values"));
  for (int64_t i = 0; i < cols; ++i) {
    if (h[i * cols + i] < 0.0f) return error("Hessian diagonal entry " + std::to_string(i) + " is negative");
  }
  return ok_status();
}

// Parameters of the group starting at column j of the working row wr, inside the block [b0, b1). Columns
// of the group at or past b1 have not yet received the lazy updates of columns [b0, j) (err holds their
// errors); they are applied here to a copy, in the same order as the lazy update will, so the parameters
// see exactly the weights the unblocked algorithm would (whatever block_size is).
GroupParams group_start_params(const float* wr, int64_t j, int64_t b0, int64_t b1, const float* err, const float* u,
                               int64_t cols, int64_t gs, int bits, bool sym, std::vector<float>& buf) {
  if (j + gs <= b1) return group_params(wr + j, gs, bits, sym);
  for (int64_t k = j; k < j + gs; ++k) buf[k - j] = wr[k];
  for (int64_t jj = b0; jj < j; ++jj) {
    const float e = err[jj - b0];
    if (e == 0.0f) continue;
    const float* ujj = u + jj * cols;
    for (int64_t k = std::max(b1, j); k < j + gs; ++k) buf[k - j] -= e * ujj[k];
  }
  return group_params(buf.data(), gs, bits, sym);
}

}  // namespace

Result<GptqPrepared> gptq_prepare(const float* w, int64_t rows, int64_t cols, const std::vector<float>& h,
                                  double damp_percent, bool act_order) {
  GptqPrepared p;
  // 1. Dead columns.
  p.w.assign(w, w + rows * cols);
  std::vector<double> hd(h.begin(), h.end());
  for (int64_t i = 0; i < cols; ++i) {
    if (hd[i * cols + i] <= 0.0) {
      hd[i * cols + i] = 1.0;
      for (int64_t r = 0; r < rows; ++r) p.w[r * cols + i] = 0.0f;
    }
  }
  // 2. Visiting order.
  p.perm.resize(static_cast<size_t>(cols));
  std::iota(p.perm.begin(), p.perm.end(), 0);
  if (act_order) {
    std::stable_sort(p.perm.begin(), p.perm.end(),
                     [&](int64_t a, int64_t b) { return hd[a * cols + a] > hd[b * cols + b]; });
  }
  std::vector<double> hp(static_cast<size_t>(cols * cols));
  for (int64_t i = 0; i < cols; ++i) {
    for (int64_t j = 0; j < cols; ++j) hp[i * cols + j] = hd[p.perm[i] * cols + p.perm[j]];
  }
  // 3. Dampening.
  double mean_diag = 0.0;
  for (int64_t i = 0; i < cols; ++i) mean_diag += hp[i * cols + i];
  mean_diag /= static_cast<double>(cols);
  for (int64_t i = 0; i < cols; ++i) hp[i * cols + i] += damp_percent * mean_diag;
  // 4. Upper Cholesky factor of H^-1.
  auto u_res = upper_cholesky_of_inverse(hp, cols);
  if (!u_res.ok()) return u_res.status().with_context("GPTQ Hessian (try a larger damp_percent)");
  p.u.assign(u_res->begin(), u_res->end());
  return p;
}

Result<AffineTensor> quantize_gptq(const float* w, int64_t rows, int64_t cols, const std::vector<float>& h,
                                   const AffineSpec& spec, const GptqOptions& opt) {
  LLMOPT_RETURN_IF_ERROR(check_inputs(w, rows, cols, h, spec, opt));
  const int bits = spec.bits;
  const bool sym = spec.symmetric;

  auto prep = gptq_prepare(w, rows, cols, h, opt.damp_percent, opt.act_order);
  if (!prep.ok()) return prep.status();
  const std::vector<float>& wz = prep->w;
  const std::vector<int64_t>& perm = prep->perm;
  const std::vector<float>& u = prep->u;

  AffineTensor t;
  t.spec = spec;
  t.rows = rows;
  t.cols = cols;
  t.codes.resize(static_cast<size_t>(rows * cols));
  const int64_t groups = group_count(spec, rows, cols);
  t.scales.assign(static_cast<size_t>(groups), 0.0f);
  t.zeros.assign(static_cast<size_t>(groups), 0);
  // Parameters fixed before the loop (all but kGroup without act_order).
  const bool dynamic_groups = spec.granularity == AffineSpec::kGroup && !opt.act_order;
  if (!dynamic_groups) {
    const int64_t len = group_length(spec, rows, cols);
    for (int64_t g = 0; g < groups; ++g) {
      const GroupParams p = group_params(wz.data() + g * len, len, bits, sym);
      t.scales[g] = p.scale;
      t.zeros[g] = p.zero;
    }
  }
  const int64_t block = std::min<int64_t>(opt.block_size, cols);
  const int64_t gs = spec.group_size;
  const int64_t groups_per_row = spec.granularity == AffineSpec::kGroup ? cols / gs : 1;

  // 5. The column loop, one row at a time.
  auto run_rows = [&](int64_t r0, int64_t r1, int /*thread*/) {
    std::vector<float> wr(static_cast<size_t>(cols));
    std::vector<float> err(static_cast<size_t>(block));
    std::vector<float> group_buf(static_cast<size_t>(gs > 0 ? gs : 1));
    for (int64_t r = r0; r < r1; ++r) {
      for (int64_t p = 0; p < cols; ++p) wr[p] = wz[r * cols + perm[p]];
      GroupParams cur;
      gptq_sweep_row(wr.data(), u.data(), cols, block, err.data(),
                     [&](int64_t j, int64_t b0, int64_t b1, const float* errs) {
                       const int64_t c = perm[j];
                       if (dynamic_groups) {
                         if (j % gs == 0) {
                           cur = group_start_params(wr.data(), j, b0, b1, errs, u.data(), cols, gs, bits, sym,
                                                    group_buf);
                           t.scales[r * groups_per_row + j / gs] = cur.scale;
                           t.zeros[r * groups_per_row + j / gs] = cur.zero;
                         }
                       } else {
                         cur = t.params(group_of(spec, cols, r, c));
                       }
                       const int32_t q = quantize_value(wr[j], cur, bits, sym);
                       t.codes[r * cols + c] = static_cast<int16_t>(q);
                       return dequantize_value(q, cur);
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

}  // namespace llmopt::quant
