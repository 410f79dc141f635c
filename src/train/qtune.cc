// End-to-end tuning of quantization parameters: see qtune.h.
#include "train/qtune.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <numeric>
#include <string>

#include "core/dtype.h"
#include "train/optimizer.h"
#include "train/rng.h"
#include "train/transformer.h"

namespace llmopt::train {
namespace {

float to_half(float x) { return fp16_to_fp32(fp32_to_fp16(x)); }

struct Group {
  const TunedWeight* w;
  int64_t row, g;  // row and group within the row
  float d0, m0;    // the quantizer's parameters
  size_t u, v;     // indices of the variables (v == u on the symmetric grids: no offset)
  size_t z;        // with codes: the index of the code offset of the group's first weight
};

// The tuning problem: the groups and their variables, the teacher's and student's passes, the KL.
class Problem {
 public:
  Problem(const ParamLayout& layout, const std::vector<float>& teacher, std::vector<float>& student,
          const std::vector<std::vector<int32_t>>& windows, ThreadPool& pool)
      : L_(layout), teacher_(teacher), student_(student), windows_(windows), pool_(pool), tt_(layout), st_(layout) {}

  Status init(const std::vector<TunedWeight>& weights, bool codes) {
    codes_ = codes;
    if (teacher_.size() != L_.total || student_.size() != L_.total) return error("parameter buffers do not fit the layout");
    if (windows_.empty() || windows_[0].size() < 2) return error("needs windows of at least 2 tokens");
    V_ = L_.cfg.n_vocab;
    T_ = static_cast<int64_t>(windows_[0].size()) - 1;
    if (T_ > L_.cfg.n_ctx_train) return error("windows are longer than the model's context");
    for (const std::vector<int32_t>& w : windows_) {
      if (static_cast<int64_t>(w.size()) != T_ + 1) return error("windows of different lengths");
      for (int32_t id : w) {
        if (id < 0 || id >= V_) return error("token id " + std::to_string(id) + " outside the vocabulary");
      }
    }
    size_t n_z = 0;
    for (const TunedWeight& w : weights) {
      if (w.param < 0 || w.param >= static_cast<int>(L_.tensors.size()) || w.grid == nullptr) {
        return error("a tuned weight without a tensor or grid");
      }
      const ParamTensor& pt = L_.tensors[static_cast<size_t>(w.param)];
      const quant::GridTensor& t = *w.grid;
      if (pt.shape.size() != 2 || pt.shape[0] != t.rows || pt.shape[1] != t.cols ||
          t.codes.size() != static_cast<size_t>(t.rows * t.cols) ||
          t.params.size() != static_cast<size_t>(t.rows * t.groups_per_row())) {
        return error(pt.name + " does not match its grid's shape");
      }
      const bool asym = t.spec.type == quant::GridType::kQ4_1;
      for (int64_t r = 0; r < t.rows; ++r) {
        for (int64_t g = 0; g < t.groups_per_row(); ++g) {
          const quant::GridParams p = t.params[static_cast<size_t>(r * t.groups_per_row() + g)];
          groups_.push_back({&w, r, g, p.d, p.m, n_var_, asym ? n_var_ + 1 : n_var_, n_z});
          n_var_ += asym ? 2 : 1;
          if (codes_) n_z += static_cast<size_t>(t.group_len());
        }
      }
    }
    for (Group& gr : groups_) gr.z += n_var_;  // the code offsets follow the scales and offsets
    n_param_ = n_var_;
    n_var_ += n_z;
    var.assign(n_var_, 0.0f);
    return ok_status();
  }

  size_t n_var() const { return n_var_; }
  size_t n_param() const { return n_param_; }  // the scales and offsets; code offsets follow
  std::vector<float> var;  // u and v of every group

  quant::GridParams params_of(const Group& gr, bool half) const {
    quant::GridParams p{gr.d0 * (1.0f + var[gr.u]), gr.m0};
    if (gr.v != gr.u) p.m = gr.m0 + var[gr.v] * std::fabs(gr.d0);
    if (half) p = {to_half(p.d), to_half(p.m)};
    return p;
  }
  const std::vector<Group>& groups() const { return groups_; }

  // The code of column c of a group: the quantizer's, moved by the rounded offset with codes.
  int32_t code_of(const Group& gr, const quant::GridTensor& t, int64_t c0, int64_t c) const {
    const int32_t q0 = t.codes[gr.row * t.cols + c];
    if (!codes_) return q0;
    const int32_t q = q0 + static_cast<int32_t>(std::lround(var[gr.z + static_cast<size_t>(c - c0)]));
    return std::clamp(q, quant::grid_code_min(t.spec.type), quant::grid_code_max(t.spec.type));
  }

  // The student's tuned weights from their codes and the parameters var gives.
  void write_weights(bool half) {
    for_groups([&](const Group& gr, const quant::GridTensor& t, int64_t c0, int64_t len) {
      const quant::GridParams p = params_of(gr, half);
      float* w = student_.data() + L_.tensors[static_cast<size_t>(gr.w->param)].offset + gr.row * t.cols;
      for (int64_t c = c0; c < c0 + len; ++c) w[c] = quant::grid_value(code_of(gr, t, c0, c), p, t.spec.type);
    });
  }

  // Keeps every code offset where its code stays in the grid's range (an offset beyond it would
  // drift on without changing the code).
  void clamp_offsets() {
    if (!codes_) return;
    for_groups([&](const Group& gr, const quant::GridTensor& t, int64_t c0, int64_t len) {
      const float lo = static_cast<float>(quant::grid_code_min(t.spec.type)) - 0.5f;
      const float hi = static_cast<float>(quant::grid_code_max(t.spec.type)) + 0.5f;
      for (int64_t c = c0; c < c0 + len; ++c) {
        const float q0 = static_cast<float>(t.codes[gr.row * t.cols + c]);
        float& z = var[gr.z + static_cast<size_t>(c - c0)];
        z = std::clamp(z, lo - q0, hi - q0);
      }
    });
  }

  // The tuned codes into the grids.
  void store_codes() {
    if (!codes_) return;
    for_groups([&](const Group& gr, const quant::GridTensor& t, int64_t c0, int64_t len) {
      std::vector<int16_t> q(static_cast<size_t>(len));
      for (int64_t c = c0; c < c0 + len; ++c) q[static_cast<size_t>(c - c0)] = static_cast<int16_t>(code_of(gr, t, c0, c));
      std::copy(q.begin(), q.end(), gr.w->grid->codes.begin() + gr.row * t.cols + c0);
    });
  }

  // Mean KL of the student over the windows idx; with gvar, the gradient for var at its current value.
  double batch_kl(const std::vector<size_t>& idx, std::vector<float>* gvar) {
    const int64_t B = static_cast<int64_t>(idx.size()), n = B * T_;
    tokens_.clear();
    for (size_t i : idx) tokens_.insert(tokens_.end(), windows_[i].begin(), windows_[i].end());
    if (static_cast<int64_t>(ids_.size()) < n * V_) {
      ids_.resize(static_cast<size_t>(n * V_));
      for (int64_t r = 0; r < n; ++r) std::iota(ids_.begin() + r * V_, ids_.begin() + (r + 1) * V_, 0);
    }
    const double entropy = teacher_targets(B);
    SoftTargets soft;
    soft.k = static_cast<int32_t>(V_);
    soft.ids = ids_.data();
    soft.probs = probs_.data();
    if (gvar != nullptr) grad_.resize(L_.total);
    const double ce = st_.run(student_.data(), tokens_.data(), B, T_, gvar ? grad_.data() : nullptr, pool_, &soft);
    if (gvar != nullptr) {
      gvar->assign(n_var_, 0.0f);
      // W = d q + m with d = d0 (1 + u), m = m0 + v |d0|: dL/du = d0 sum q dL/dW, dL/dv = |d0| sum dL/dW.
      for_groups([&](const Group& gr, const quant::GridTensor& t, int64_t c0, int64_t len) {
        const float* g = grad_.data() + L_.tensors[static_cast<size_t>(gr.w->param)].offset + gr.row * t.cols;
        double dd = 0.0, dm = 0.0;
        const float d = params_of(gr, false).d;
        for (int64_t c = c0; c < c0 + len; ++c) {
          dd += static_cast<double>(g[c]) * code_of(gr, t, c0, c);
          dm += g[c];
          if (codes_) (*gvar)[gr.z + static_cast<size_t>(c - c0)] = g[c] * d;  // straight through the rounding
        }
        (*gvar)[gr.u] = static_cast<float>(dd * gr.d0);
        if (gr.v != gr.u) (*gvar)[gr.v] = static_cast<float>(dm * std::fabs(gr.d0));
      });
    }
    return ce - entropy / static_cast<double>(n);
  }

  // Mean KL over all windows, in batches of `batch`.
  double kl_all(int batch) { return kl_range(0, windows_.size(), batch); }
  // The mean KL over windows [begin, end).
  double kl_range(size_t begin, size_t end, int batch) {
    double sum = 0.0;
    for (size_t i = begin; i < end; i += static_cast<size_t>(batch)) {
      std::vector<size_t> idx;
      for (size_t j = i; j < std::min(end, i + static_cast<size_t>(batch)); ++j) idx.push_back(j);
      sum += batch_kl(idx, nullptr) * static_cast<double>(idx.size());
    }
    return sum / static_cast<double>(end - begin);
  }

 private:
  template <class F>
  void for_groups(F&& f) {
    pool_.parallel_for(static_cast<int64_t>(groups_.size()), [&](int64_t b, int64_t e, int) {
      for (int64_t i = b; i < e; ++i) {
        const Group& gr = groups_[static_cast<size_t>(i)];
        const quant::GridTensor& t = *gr.w->grid;
        f(gr, t, gr.g * t.group_len(), t.group_len());
      }
    });
  }

  // The teacher's full next-token distributions for the B windows in tokens_ (probs_, row after row);
  // returns the sum of their entropies.
  double teacher_targets(int64_t B) {
    tt_.run(teacher_.data(), tokens_.data(), B, T_, nullptr, pool_);
    const std::vector<float>& logits = tt_.logits();
    const int64_t n = B * T_;
    probs_.resize(static_cast<size_t>(n * V_));
    std::vector<double> row_entropy(static_cast<size_t>(n));
    pool_.parallel_for(n, [&](int64_t begin, int64_t end, int) {
      for (int64_t r = begin; r < end; ++r) {
        const float* l = logits.data() + r * V_;
        const double mx = *std::max_element(l, l + V_);
        double sum = 0.0;
        for (int64_t j = 0; j < V_; ++j) sum += std::exp(static_cast<double>(l[j]) - mx);
        const double lse = mx + std::log(sum);
        double h = 0.0;
        for (int64_t j = 0; j < V_; ++j) {
          const double lp = static_cast<double>(l[j]) - lse;
          const double p = std::exp(lp);
          probs_[static_cast<size_t>(r * V_ + j)] = static_cast<float>(p);
          h -= p * lp;
        }
        row_entropy[static_cast<size_t>(r)] = h;
      }
    });
    return std::accumulate(row_entropy.begin(), row_entropy.end(), 0.0);
  }

  const ParamLayout& L_;
  const std::vector<float>& teacher_;
  std::vector<float>& student_;
  const std::vector<std::vector<int32_t>>& windows_;
  ThreadPool& pool_;
  Transformer<float> tt_, st_;
  int64_t V_ = 0, T_ = 0;
  bool codes_ = false;
  std::vector<Group> groups_;
  size_t n_var_ = 0, n_param_ = 0;
  std::vector<float> probs_, grad_;
  std::vector<int32_t> ids_, tokens_;
};

}  // namespace

Result<double> qtune_kl(const ParamLayout& layout, const std::vector<float>& teacher, std::vector<float>& student,
                        const std::vector<TunedWeight>& weights, const std::vector<std::vector<int32_t>>& windows,
                        std::vector<double>* grad, ThreadPool& pool, bool codes) {
  Problem pb(layout, teacher, student, windows, pool);
  LLMOPT_RETURN_IF_ERROR(pb.init(weights, codes).with_context("tune"));
  pb.write_weights(false);
  std::vector<size_t> all(windows.size());
  std::iota(all.begin(), all.end(), 0);
  std::vector<float> g;
  const double kl = pb.batch_kl(all, grad != nullptr ? &g : nullptr);
  if (grad != nullptr) grad->assign(g.begin(), g.end());
  return kl;
}

Result<QTuneReport> tune_grid_params(const ParamLayout& layout, const std::vector<float>& teacher,
                                     std::vector<float>& student, const std::vector<TunedWeight>& weights,
                                     const std::vector<std::vector<int32_t>>& windows, const QTuneOptions& opt) {
  if (opt.pool == nullptr) return error("tune: no thread pool");
  if (opt.steps < 1 || opt.batch < 1 || !(opt.lr > 0.0f)) return error("tune: steps, batch and lr must be positive");
  Problem pb(layout, teacher, student, windows, *opt.pool);
  LLMOPT_RETURN_IF_ERROR(pb.init(weights, opt.codes).with_context("tune"));

  if (opt.holdout < 0 || static_cast<size_t>(opt.holdout) >= windows.size()) {
    return error("tune: " + std::to_string(opt.holdout) + " held-out windows of " + std::to_string(windows.size()) +
                 " leave none to train on");
  }
  const size_t n_train = windows.size() - static_cast<size_t>(opt.holdout);
  QTuneReport rep;
  pb.write_weights(false);  // the student's weights exactly as the grids give them
  rep.kl_before = pb.kl_range(0, n_train, opt.batch);
  if (opt.holdout > 0) rep.held_out_before = pb.kl_range(n_train, windows.size(), opt.batch);
  rep.held_out_after = rep.held_out_before;
  std::vector<float> best_var = pb.var;  // the parameters at the lowest held-out KL (at first: untuned)
  const int eval_every = opt.eval_every > 0 ? opt.eval_every : std::max(1, opt.steps / 10);

  // Two Adam runs over the variables: the scales and offsets [0, n_param), the code offsets after them
  // (with their own learning rate).
  const size_t n_param = pb.n_param();
  struct Part {
    ParamLayout layout;
    AdamWState state;
  };
  auto make_part = [](size_t n) {
    Part p;
    p.layout.tensors.push_back({"qparams", {static_cast<int64_t>(n)}, 0, static_cast<int64_t>(n), false});
    p.layout.total = n;
    p.state.m.assign(n, 0.0f);
    p.state.v.assign(n, 0.0f);
    return p;
  };
  Part params_part = make_part(n_param), codes_part = make_part(pb.n_var() - n_param);
  AdamWConfig acfg;
  acfg.weight_decay = 0.0f;
  LrSchedule sched;
  sched.peak = opt.lr;
  sched.warmup = std::max(1, opt.steps / 10);
  sched.total = opt.steps;
  std::vector<size_t> order(n_train);
  std::iota(order.begin(), order.end(), 0);
  Rng rng(opt.seed);
  size_t next = order.size();
  std::vector<float> gvar;
  const size_t batch = std::min(static_cast<size_t>(opt.batch), n_train);
  for (int step = 0; step < opt.steps; ++step) {
    std::vector<size_t> idx;
    while (idx.size() < batch) {
      if (next == order.size()) {  // a new pass over the windows, shuffled
        for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng.below(i)]);
        next = 0;
      }
      idx.push_back(order[next++]);
    }
    const double kl = pb.batch_kl(idx, &gvar);
    const float lr = sched.at(step);
    adamw_update(params_part.layout, acfg, lr, gvar.data(), pb.var.data(), params_part.state);
    if (opt.codes) {
      adamw_update(codes_part.layout, acfg, lr * opt.code_lr_mult, gvar.data() + n_param, pb.var.data() + n_param,
                   codes_part.state);
    }
    pb.clamp_offsets();
    pb.write_weights(false);
    if (opt.progress && ((step + 1) % std::max(1, opt.report_every) == 0 || step + 1 == opt.steps)) {
      opt.progress(step + 1, opt.steps, kl);
    }
    if (opt.holdout > 0 && ((step + 1) % eval_every == 0 || step + 1 == opt.steps)) {
      pb.write_weights(true);  // measured as the file will hold them
      const double val = pb.kl_range(n_train, windows.size(), opt.batch);
      pb.write_weights(false);
      const bool best = val < rep.held_out_after;
      if (best) {
        rep.held_out_after = val;
        rep.best_step = step + 1;
        best_var = pb.var;
      }
      if (opt.on_validation) opt.on_validation(step + 1, opt.steps, val, best);
    }
  }

  if (opt.holdout > 0) pb.var = best_var;
  pb.write_weights(true);
  rep.kl_after = pb.kl_range(0, n_train, opt.batch);
  rep.kept = opt.holdout > 0 ? rep.best_step > 0 : rep.kl_after < rep.kl_before;
  if (rep.kept) {
    pb.store_codes();
    for (const Group& gr : pb.groups()) {
      quant::GridTensor& t = *gr.w->grid;
      t.params[static_cast<size_t>(gr.row * t.groups_per_row() + gr.g)] = pb.params_of(gr, true);
    }
  } else {
    std::fill(pb.var.begin(), pb.var.end(), 0.0f);
    pb.write_weights(false);
  }
  return rep;
}

}  // namespace llmopt::train
