// llmopt eval's computation: perplexity, KL divergence against the base and top-1 agreement chunk by
// chunk, sizes, and pp/tg speed through runtime/bench.
#include "runtime/eval.h"

#include "core/bytes.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <nlohmann/json.hpp>

#include "core/check.h"
#include "runtime/bench.h"

namespace llmopt {
namespace {

// log softmax of a row is logits[i] - max - lse.
struct RowStats {
  double max = 0.0;
  double lse = 0.0;
  int32_t argmax = 0;
};

RowStats row_stats(const float* logits, int32_t n_vocab) {
  RowStats s;
  float mx = logits[0];
  int32_t am = 0;
  for (int32_t i = 1; i < n_vocab; ++i) {
    if (logits[i] > mx) {
      mx = logits[i];
      am = i;
    }
  }
  double sum = 0.0;
  for (int32_t i = 0; i < n_vocab; ++i) sum += std::exp(static_cast<double>(logits[i]) - mx);
  s.max = mx;
  s.lse = std::log(sum);
  s.argmax = am;
  return s;
}

double kl_rows(const float* p, const RowStats& ps, const float* q, const RowStats& qs, int32_t n_vocab) {
  double kl = 0.0;
  for (int32_t i = 0; i < n_vocab; ++i) {
    const double lp = static_cast<double>(p[i]) - ps.max - ps.lse;
    const double lq = static_cast<double>(q[i]) - qs.max - qs.lse;
    kl += std::exp(lp) * (lp - lq);
  }
  return kl;
}

uint64_t numel(const TensorView& t) { return t.present() ? static_cast<uint64_t>(t.numel()) : 0; }


std::string eval_fmt(const char* f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), f, v);
  return buf;
}

}  // namespace

double kl_divergence_logits(const float* p_logits, const float* q_logits, int32_t n_vocab) {
  return kl_rows(p_logits, row_stats(p_logits, n_vocab), q_logits, row_stats(q_logits, n_vocab), n_vocab);
}

uint64_t weight_elements(const Model& model) {
  const Weights& w = model.weights();
  uint64_t total = numel(w.tok_embd) + numel(w.pos_embd) + numel(w.output_norm) + numel(w.output_norm_b);
  if (w.output.data != w.tok_embd.data) total += numel(w.output);  // as Model::weight_bytes
  for (const LayerWeights& l : w.layers) {
    for (const TensorView* t : {&l.attn_norm, &l.attn_norm_b, &l.wq, &l.wk, &l.wv, &l.wqkv, &l.bqkv, &l.wo, &l.bo,
                                &l.ffn_norm, &l.ffn_norm_b, &l.w_gate, &l.w_up, &l.b_up, &l.w_down, &l.b_down}) {
      total += numel(*t);
    }
  }
  return total;
}


Result<std::vector<EvalRow>> run_eval(const std::vector<EvalModel>& models, const std::string& text,
                                      const EvalOptions& opts, const EvalProgress& progress) {
  if (models.empty()) return error("no model to evaluate");
  if (opts.threads < 1 || opts.threads > 1024) {
    return error("-t " + std::to_string(opts.threads) + " is out of range (1 to 1024 threads)");
  }
  const Model& base = *models[0].model;
  const int32_t n_vocab = base.config().n_vocab;
  for (size_t m = 1; m < models.size(); ++m) {
    const int32_t nv = models[m].model->config().n_vocab;
    if (nv != n_vocab) {
      return error("models do not share a vocabulary: " + models[0].path + " has " + std::to_string(n_vocab) +
                   " tokens, " + models[m].path + " has " + std::to_string(nv));
    }
  }
  PerplexityOptions popts;
  popts.n_ctx = opts.n_ctx;
  popts.n_chunks = opts.n_chunks;
  std::vector<std::unique_ptr<ChunkScorer>> scorers;
  for (const EvalModel& em : models) {
    auto sc = ChunkScorer::create(*em.model, text, popts);
    if (!sc.ok()) return sc.status().with_context(em.path);
    scorers.push_back(std::move(sc).value());
  }
  for (size_t m = 1; m < models.size(); ++m) {
    if (scorers[m]->tokens() != scorers[0]->tokens()) {
      return error(models[m].path + " tokenizes the text differently from " + models[0].path +
                   " (KL divergence needs the same tokens)");
    }
  }

  const size_t n_models = models.size();
  std::vector<double> kl_sum(n_models, 0.0), kl_sq(n_models, 0.0), d_sum(n_models, 0.0), d_sq(n_models, 0.0);
  std::vector<int64_t> same(n_models, 0), positions(n_models, 0);
  ThreadPool pool(opts.threads);
  ForwardOutput base_out, var_out;
  const int32_t n_chunks = scorers[0]->n_chunks();
  const int32_t first = scorers[0]->first_scored();
  const int32_t n_ctx = opts.n_ctx;
  std::vector<RowStats> base_stats(static_cast<size_t>(n_ctx));
  // Per scored position, computed on the pool (each row's softmax and KL over the whole vocabulary:
  // with a 49152-token vocabulary they took most of an eval's time on one thread), then summed in
  // position order, so the totals do not depend on the thread count.
  std::vector<double> pos_kl(static_cast<size_t>(n_ctx)), pos_dnll(static_cast<size_t>(n_ctx));
  std::vector<uint8_t> pos_same(static_cast<size_t>(n_ctx));
  const int64_t n_scored = std::max(0, n_ctx - 1 - first);
  for (int32_t c = 0; c < n_chunks; ++c) {
    scorers[0]->run_chunk(c, base_out, pool);
    pool.parallel_for(n_scored, [&](int64_t i0, int64_t i1, int) {
      for (int64_t j = first + i0; j < first + i1; ++j) {
        base_stats[static_cast<size_t>(j)] = row_stats(base_out.logits.data() + j * n_vocab, n_vocab);
      }
    });
    for (size_t m = 0; m < n_models; ++m) {
      const ForwardOutput* out = &base_out;
      if (m > 0) {
        scorers[m]->run_chunk(c, var_out, pool);
        out = &var_out;
      }
      pool.parallel_for(n_scored, [&](int64_t i0, int64_t i1, int) {
        for (int64_t j = first + i0; j < first + i1; ++j) {
          const float* p = base_out.logits.data() + j * n_vocab;
          const float* q = out->logits.data() + j * n_vocab;
          const RowStats& ps = base_stats[static_cast<size_t>(j)];
          const RowStats qs = m == 0 ? ps : row_stats(q, n_vocab);
          pos_kl[static_cast<size_t>(j)] = kl_rows(p, ps, q, qs, n_vocab);
          pos_same[static_cast<size_t>(j)] = ps.argmax == qs.argmax;
          // NLL of the next token: -(logit - max - lse); the difference to the base's.
          const int32_t t = scorers[0]->target(c, static_cast<int32_t>(j));
          pos_dnll[static_cast<size_t>(j)] = (qs.max + qs.lse - q[t]) - (ps.max + ps.lse - p[t]);
        }
      });
      for (int32_t j = first; j < n_ctx - 1; ++j) {
        const double kl = pos_kl[static_cast<size_t>(j)], d = pos_dnll[static_cast<size_t>(j)];
        kl_sum[m] += kl;
        kl_sq[m] += kl * kl;
        d_sum[m] += d;
        d_sq[m] += d * d;
        same[m] += pos_same[static_cast<size_t>(j)];
        ++positions[m];
      }
    }
    if (progress.on_chunk) progress.on_chunk(c + 1, n_chunks);
  }

  std::vector<EvalRow> rows(n_models);
  for (size_t m = 0; m < n_models; ++m) {
    EvalRow& r = rows[m];
    const Model& model = *models[m].model;
    r.name = models[m].path;
    r.file_bytes = path_bytes(models[m].path);
    r.weight_bytes = model.weight_bytes();
    r.n_weights = weight_elements(model);
    r.bpw = r.n_weights > 0 ? static_cast<double>(r.weight_bytes) * 8.0 / static_cast<double>(r.n_weights) : 0.0;
    r.ppl = scorers[m]->result();
    r.n_positions = positions[m];
    r.kld = positions[m] > 0 ? kl_sum[m] / static_cast<double>(positions[m]) : 0.0;
    r.same_top1_pct = positions[m] > 0 ? 100.0 * static_cast<double>(same[m]) / static_cast<double>(positions[m]) : 0.0;
    if (positions[m] > 1) {
      const double n = static_cast<double>(positions[m]);
      // Standard error of a mean from the sums of x and x^2 (population variance / (n - 1)).
      auto mean_stderr = [n](double sum, double sq) {
        const double mean = sum / n;
        return std::sqrt(std::max(0.0, sq / n - mean * mean) / (n - 1.0));
      };
      r.kld_stderr = mean_stderr(kl_sum[m], kl_sq[m]);
      r.dppl_pct_stderr = 100.0 * std::exp(d_sum[m] / n) * mean_stderr(d_sum[m], d_sq[m]);
      const double p = static_cast<double>(same[m]) / n;
      r.same_top1_stderr = 100.0 * std::sqrt(p * (1.0 - p) / (n - 1.0));
    }
  }
  for (size_t m = 0; m < n_models; ++m) {
    rows[m].ratio = rows[m].file_bytes > 0 ? static_cast<double>(rows[0].file_bytes) / static_cast<double>(rows[m].file_bytes) : 0.0;
    rows[m].dppl_pct = (rows[m].ppl.ppl / rows[0].ppl.ppl - 1.0) * 100.0;
  }
  scorers.clear();
  if (opts.speed) {
    for (size_t m = 0; m < n_models; ++m) {
      const Model& model = *models[m].model;
      const int32_t ctx = model.config().n_ctx_train;
      BenchOptions b;
      b.n_prompt = {ctx > 0 ? std::min(opts.n_prompt, ctx) : opts.n_prompt};
      b.n_gen = {ctx > 1 ? std::min(opts.n_gen, ctx - 1) : opts.n_gen};
      b.threads = {opts.threads};
      b.repetitions = opts.repetitions;
      if (progress.on_line) {
        b.on_progress = [&](const std::string& line) { progress.on_line(models[m].path + ": " + line); };
      }
      auto rep = run_bench(model, b);
      if (!rep.ok()) return rep.status().with_context(models[m].path);
      EvalRow& r = rows[m];
      r.has_speed = true;
      for (const BenchRow& br : rep->rows) {
        if (br.n_prompt > 0) {
          r.n_prompt = br.n_prompt;
          r.pp_tps = br.median;
        } else if (br.n_gen > 0) {
          r.n_gen = br.n_gen;
          r.tg_tps = br.median;
        }
      }
    }
  }
  return rows;
}

std::string format_eval_table(const std::vector<EvalRow>& rows) {
  const bool speed = !rows.empty() && rows[0].has_speed;
  std::vector<std::string> header = {"model", "size", "ratio", "bpw", "PPL", "Δppl", "KLD", "same top-1"};
  if (speed) {
    header.push_back("pp" + std::to_string(rows[0].n_prompt) + " t/s");
    header.push_back("tg" + std::to_string(rows[0].n_gen) + " t/s");
  }
  std::vector<std::vector<std::string>> cells;
  for (const EvalRow& r : rows) {
    std::vector<std::string> c = {r.name,
                                  human_bytes(static_cast<double>(r.file_bytes)),
                                  eval_fmt("%.2fx", r.ratio),
                                  eval_fmt("%.2f", r.bpw),
                                  eval_fmt("%.4f", r.ppl.ppl) + " ± " + eval_fmt("%.4f", r.ppl.ppl_stderr),
                                  eval_fmt("%+.3f%%", r.dppl_pct) + " ± " + eval_fmt("%.3f", r.dppl_pct_stderr),
                                  eval_fmt("%.6f", r.kld) + " ± " + eval_fmt("%.6f", r.kld_stderr),
                                  eval_fmt("%.2f%%", r.same_top1_pct) + " ± " + eval_fmt("%.2f", r.same_top1_stderr)};
    if (speed) {
      c.push_back(r.has_speed ? eval_fmt("%.2f", r.pp_tps) : "-");
      c.push_back(r.has_speed ? eval_fmt("%.2f", r.tg_tps) : "-");
    }
    cells.push_back(std::move(c));
  }
  // Column widths in code points (the header has "Δ" and the cells "±", both 2 bytes, 1 column).
  auto width = [](const std::string& s) {
    size_t w = 0;
    for (unsigned char ch : s) w += (ch & 0xC0) != 0x80;
    return w;
  };
  std::vector<size_t> w(header.size());
  for (size_t i = 0; i < header.size(); ++i) {
    w[i] = width(header[i]);
    for (const auto& c : cells) w[i] = std::max(w[i], width(c[i]));
  }
  auto line = [&](const std::vector<std::string>& c) {
    std::string s = "|";
    for (size_t i = 0; i < c.size(); ++i) {
      const size_t pad = w[i] - width(c[i]);
      s += ' ';
      if (i > 0) s.append(pad, ' ');  // numbers right-aligned
      s += c[i];
      if (i == 0) s.append(pad, ' ');  // names left-aligned
      s += " |";
    }
    s += '\n';
    return s;
  };
  std::string out = line(header);
  out += "|";
  for (size_t i = 0; i < header.size(); ++i) {
    out += ' ';
    out.append(i == 0 ? w[i] : w[i] - 1, '-');
    if (i > 0) out += ':';
    out += " |";
  }
  out += '\n';
  for (const auto& c : cells) out += line(c);
  return out;
}

std::string format_eval_json(const std::vector<EvalRow>& rows) {
  nlohmann::ordered_json arr = nlohmann::ordered_json::array();
  for (const EvalRow& r : rows) {
    nlohmann::ordered_json j;
    j["model"] = r.name;
    j["file_bytes"] = r.file_bytes;
    j["ratio"] = r.ratio;
    j["weight_bytes"] = r.weight_bytes;
    j["n_weights"] = r.n_weights;
    j["bpw"] = r.bpw;
    j["ppl"] = r.ppl.ppl;
    j["ppl_stderr"] = r.ppl.ppl_stderr;
    j["mean_nll"] = r.ppl.mean_nll;
    j["n_chunks"] = r.ppl.n_units;
    j["dppl_pct"] = r.dppl_pct;
    j["dppl_pct_stderr"] = r.dppl_pct_stderr;
    j["kld"] = r.kld;
    j["kld_stderr"] = r.kld_stderr;
    j["same_top1_pct"] = r.same_top1_pct;
    j["same_top1_stderr"] = r.same_top1_stderr;
    j["n_positions"] = r.n_positions;
    if (r.has_speed) {
      j["n_prompt"] = r.n_prompt;
      j["pp_tps"] = r.pp_tps;
      j["n_gen"] = r.n_gen;
      j["tg_tps"] = r.tg_tps;
    } else {
      j["pp_tps"] = nullptr;
      j["tg_tps"] = nullptr;
    }
    arr.push_back(std::move(j));
  }
  return arr.dump(2) + "\n";
}

}  // namespace llmopt
