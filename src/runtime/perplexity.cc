// Perplexity in llama.cpp's chunk protocol and in a per-document protocol.
#include "runtime/perplexity.h"

#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "core/check.h"
#include "runtime/kv/block_pool.h"

namespace llmopt {
namespace {

// -log softmax(logits)[target], computed in double.
double token_nll(const float* logits, int32_t n_vocab, int32_t target) {
  float mx = logits[0];
  for (int32_t i = 1; i < n_vocab; ++i) mx = std::max(mx, logits[i]);
  double sum = 0.0;
  for (int32_t i = 0; i < n_vocab; ++i) sum += std::exp(static_cast<double>(logits[i]) - mx);
  return std::log(sum) - (static_cast<double>(logits[target]) - mx);
}

}  // namespace

// Named (not internal) because ChunkScorer::State, a member type of a public class, holds one.
namespace perplexity_detail {
struct NllAccumulator {
  double sum = 0.0, sum2 = 0.0;
  int64_t n = 0;
  void add(double nll) {
    sum += nll;
    sum2 += nll * nll;
    ++n;
  }
  double mean() const { return n > 0 ? sum / static_cast<double>(n) : 0.0; }
  PerplexityResult result(int32_t units) const {
    PerplexityResult r;
    r.n_scored = n;
    r.n_units = units;
    r.mean_nll = mean();
    r.ppl = std::exp(r.mean_nll);
    // llama.cpp's uncertainty: ppl * stddev(nll) / sqrt(n - 1).
    double var = n > 0 ? sum2 / static_cast<double>(n) - r.mean_nll * r.mean_nll : 0.0;
    r.ppl_stderr = (var > 0 && n > 1) ? r.ppl * std::sqrt(var / static_cast<double>(n - 1)) : 0.0;
    return r;
  }
};
}  // namespace perplexity_detail

namespace {
using perplexity_detail::NllAccumulator;

// Adds the NLL of each (logits row, target token) pair to acc: the rows' log-sum-exp over the
// vocabulary on the pool, the sums in the order given (the same result for any thread count).
void add_row_nlls(const float* logits, int32_t n_vocab, const std::vector<std::pair<int64_t, int32_t>>& rows,
                  ThreadPool& pool, NllAccumulator& acc) {
  std::vector<double> nll(rows.size());
  pool.parallel_for(static_cast<int64_t>(rows.size()), [&](int64_t r0, int64_t r1, int) {
    for (int64_t r = r0; r < r1; ++r) {
      const auto& [row, target] = rows[static_cast<size_t>(r)];
      nll[static_cast<size_t>(r)] = token_nll(logits + row * n_vocab, n_vocab, target);
    }
  });
  for (double v : nll) acc.add(v);
}

std::string strip(const std::string& s) {
  const char* ws = " \t\n\r\f\v";
  size_t b = s.find_first_not_of(ws);
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(ws);
  return s.substr(b, e - b + 1);
}

// Runs several independent sequences (each from position 0) in one batched forward and adds the
// NLL of every token after the first.
void score_sequences(const Model& model, const std::vector<std::vector<int32_t>>& seqs, ThreadPool& pool,
                     int32_t block_size, NllAccumulator& acc) {
  const ModelConfig& cfg = model.config();
  int32_t n_blocks = 1;  // the null block
  for (const auto& s : seqs) n_blocks += (static_cast<int32_t>(s.size()) + block_size - 1) / block_size;
  KvStore kv = KvStore::for_model(cfg, n_blocks, block_size);
  BlockPool blocks(n_blocks);
  std::vector<std::unique_ptr<SeqBlocks>> tables;
  std::vector<SeqInput> batch;
  for (const auto& s : seqs) {
    tables.push_back(std::make_unique<SeqBlocks>(blocks, block_size));
    LLMOPT_CHECK(tables.back()->reserve(static_cast<int32_t>(s.size())));
    SeqInput in;
    in.tokens = s;
    in.pos0 = 0;
    in.block_table = tables.back()->table();
    in.logits = LogitsMode::kAll;
    batch.push_back(in);
  }
  ForwardOutput out;
  model.forward(batch, kv, out, pool);
  std::vector<std::pair<int64_t, int32_t>> rows;  // logits row, target token, in (sequence, position) order
  for (size_t i = 0; i < seqs.size(); ++i) {
    const auto& s = seqs[i];
    for (size_t j = 0; j + 1 < s.size(); ++j) rows.emplace_back(out.row_offset[i] + static_cast<int64_t>(j), s[j + 1]);
  }
  add_row_nlls(out.logits.data(), cfg.n_vocab, rows, pool, acc);
}

Result<PerplexityResult> perplexity_docs(const Model& model, const std::string& text, const PerplexityOptions& opts,
                                         ThreadPool& pool, const PerplexityProgress& progress) {
  const Tokenizer& tok = model.tokenizer();
  std::vector<std::vector<int32_t>> docs;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t next = text.find(opts.doc_sep, pos);
    std::string doc = strip(text.substr(pos, next == std::string::npos ? std::string::npos : next - pos));
    if (!doc.empty()) {
      std::vector<int32_t> ids = tok.encode(doc, /*add_bos=*/true);
      if (static_cast<int32_t>(ids.size()) > opts.n_ctx) ids.resize(static_cast<size_t>(opts.n_ctx));
      if (ids.size() >= 2) docs.push_back(std::move(ids));
    }
    if (opts.max_docs > 0 && static_cast<int32_t>(docs.size()) >= opts.max_docs) break;
    if (next == std::string::npos) break;
    pos = next + opts.doc_sep.size();
  }
  if (docs.empty()) return error("no document with at least 2 tokens found (separator '" + opts.doc_sep + "')");
  NllAccumulator acc;
  size_t i = 0;
  while (i < docs.size()) {
    std::vector<std::vector<int32_t>> group;
    int32_t n_tok = 0;
    while (i < docs.size() && (group.empty() || n_tok + static_cast<int32_t>(docs[i].size()) <= opts.batch_tokens)) {
      n_tok += static_cast<int32_t>(docs[i].size());
      group.push_back(docs[i++]);
    }
    score_sequences(model, group, pool, 16, acc);
    if (progress) progress(static_cast<int32_t>(i), static_cast<int32_t>(docs.size()), std::exp(acc.mean()));
  }
  return acc.result(static_cast<int32_t>(docs.size()));
}

Result<PerplexityResult> perplexity_chunks(const Model& model, const std::string& text, const PerplexityOptions& opts,
                                           ThreadPool& pool, const PerplexityProgress& progress) {
  auto scorer = ChunkScorer::create(model, text, opts);
  if (!scorer.ok()) return scorer.status();
  ForwardOutput out;
  ChunkScorer& sc = **scorer;
  for (int32_t c = 0; c < sc.n_chunks(); ++c) {
    sc.run_chunk(c, out, pool);
    if (progress) progress(c + 1, sc.n_chunks(), sc.running_ppl());
  }
  return sc.result();
}

}  // namespace

using perplexity_detail::NllAccumulator;

struct ChunkScorer::State {
  State(const ModelConfig& cfg, int32_t n_ctx)
      : kv(cfg.n_layer, cfg.kv_dim(), blocks_for_tokens(n_ctx, kBlockSize), kBlockSize),
        blocks(blocks_for_tokens(n_ctx, kBlockSize)),
        table(blocks, kBlockSize) {
    LLMOPT_CHECK(table.reserve(n_ctx));
  }
  static constexpr int32_t kBlockSize = 16;
  KvStore kv;
  BlockPool blocks;
  SeqBlocks table;
  NllAccumulator acc;
};

ChunkScorer::ChunkScorer(const Model& model, std::vector<int32_t> ids, int32_t n_ctx, int32_t n_chunks, bool use_bos)
    : model_(model), ids_(std::move(ids)), n_ctx_(n_ctx), n_chunks_(n_chunks), use_bos_(use_bos) {
  state_ = std::make_unique<State>(model.config(), n_ctx);
}

ChunkScorer::~ChunkScorer() = default;

Result<std::unique_ptr<ChunkScorer>> ChunkScorer::create(const Model& model, const std::string& text,
                                                         const PerplexityOptions& opts) {
  if (!model.has_tokenizer()) return error("model has no tokenizer");
  if (opts.n_ctx < 2) return error("context must be at least 2 tokens, got " + std::to_string(opts.n_ctx));
  const ModelConfig& cfg = model.config();
  if (cfg.arch == Arch::kGpt2 && opts.n_ctx > cfg.n_ctx_train) {
    return error("context " + std::to_string(opts.n_ctx) + " exceeds the model's " +
                 std::to_string(cfg.n_ctx_train) + " learned positions");
  }
  const Tokenizer& tok = model.tokenizer();
  const bool use_bos = tok.add_bos_default() && tok.bos() >= 0;
  std::vector<int32_t> ids = tok.encode(text, use_bos);
  const int32_t n_ctx = opts.n_ctx;
  int32_t n_chunks = static_cast<int32_t>(ids.size() / static_cast<size_t>(n_ctx));
  if (n_chunks == 0) {
    return error("the text is " + std::to_string(ids.size()) + " tokens, fewer than one chunk of " +
                 std::to_string(n_ctx) + " (use a longer text or a smaller -c)");
  }
  if (opts.n_chunks > 0) n_chunks = std::min(n_chunks, opts.n_chunks);
  return std::unique_ptr<ChunkScorer>(new ChunkScorer(model, std::move(ids), n_ctx, n_chunks, use_bos));
}

void ChunkScorer::run_chunk(int32_t c, ForwardOutput& out, ThreadPool& pool) {
  LLMOPT_CHECK(c >= 0 && c < n_chunks_);
  const ModelConfig& cfg = model_.config();
  std::vector<int32_t> chunk(ids_.begin() + static_cast<int64_t>(c) * n_ctx_,
                             ids_.begin() + static_cast<int64_t>(c + 1) * n_ctx_);
  if (use_bos_) chunk[0] = model_.tokenizer().bos();
  SeqInput in;
  in.tokens = chunk;
  in.pos0 = 0;
  in.block_table = state_->table.table();
  in.logits = LogitsMode::kAll;
  model_.forward(std::span<const SeqInput>(&in, 1), state_->kv, out, pool);
  // Score positions first .. n_ctx-2 predicting the next token (llama.cpp's perplexity).
  std::vector<std::pair<int64_t, int32_t>> rows;
  for (int32_t j = first_scored(); j < n_ctx_ - 1; ++j) rows.emplace_back(j, target(c, j));
  add_row_nlls(out.logits.data(), cfg.n_vocab, rows, pool, state_->acc);
  ++n_run_;
}

PerplexityResult ChunkScorer::result() const { return state_->acc.result(n_run_); }

double ChunkScorer::running_ppl() const { return std::exp(state_->acc.mean()); }

Result<PerplexityResult> perplexity(const Model& model, const std::string& text, const PerplexityOptions& opts,
                                    ThreadPool& pool, const PerplexityProgress& progress) {
  if (!model.has_tokenizer()) return error("model has no tokenizer");
  if (opts.n_ctx < 2) return error("context must be at least 2 tokens, got " + std::to_string(opts.n_ctx));
  const ModelConfig& cfg = model.config();
  if (cfg.arch == Arch::kGpt2 && opts.n_ctx > cfg.n_ctx_train) {
    return error("context " + std::to_string(opts.n_ctx) + " exceeds the model's " +
                 std::to_string(cfg.n_ctx_train) + " learned positions");
  }
  if (!opts.doc_sep.empty()) return perplexity_docs(model, text, opts, pool, progress);
  return perplexity_chunks(model, text, opts, pool, progress);
}

}  // namespace llmopt
