// Distillation data sets (see distill_data.h).
#include "train/distill_data.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>

#include "core/check.h"
#include "model/kv_store.h"
#include "model/model.h"

namespace llmopt::train {
namespace {

constexpr char kMagic[8] = {'L', 'L', 'M', 'O', 'D', 'I', 'S', 'T'};
constexpr uint32_t kVersion = 1;

struct Header {
  char magic[8];
  uint32_t version;
  uint32_t k;
  int32_t n_vocab;
  uint32_t reserved;
  uint64_t n_tokens;
};
static_assert(sizeof(Header) == 32);

void set_hard(DistillSet& s, size_t row, int32_t token) {
  const size_t k = static_cast<size_t>(s.k);
  std::fill_n(s.ids.begin() + row * k, k, -1);
  std::fill_n(s.probs.begin() + row * k, k, 0.0f);
  s.ids[row * k] = token;
  s.probs[row * k] = 1.0f;
}

void push_open_row(DistillSet& s, int32_t token) {
  s.tokens.push_back(token);
  s.ids.insert(s.ids.end(), static_cast<size_t>(s.k), -1);
  s.probs.insert(s.probs.end(), static_cast<size_t>(s.k), 0.0f);
}

}  // namespace

void DistillSet::push_token(int32_t token) {
  if (!tokens.empty() && row_open(tokens.size() - 1)) set_hard(*this, tokens.size() - 1, token);
  push_open_row(*this, token);
}

void DistillSet::set_last_row(const float* logits) {
  LLMOPT_CHECK(!tokens.empty());
  const size_t row = tokens.size() - 1;
  top_k_softmax(logits, n_vocab, k, ids.data() + row * static_cast<size_t>(k),
                probs.data() + row * static_cast<size_t>(k));
}

void DistillSet::append_set(const DistillSet& o) {
  LLMOPT_CHECK(o.k == k && o.n_vocab == n_vocab);
  if (o.tokens.empty()) return;
  if (!tokens.empty() && row_open(tokens.size() - 1)) set_hard(*this, tokens.size() - 1, o.tokens[0]);
  tokens.insert(tokens.end(), o.tokens.begin(), o.tokens.end());
  ids.insert(ids.end(), o.ids.begin(), o.ids.end());
  probs.insert(probs.end(), o.probs.begin(), o.probs.end());
}

size_t DistillSet::n_soft() const {
  size_t n = 0;
  for (size_t i = 0; i + 1 < tokens.size(); ++i) n += is_soft(i) ? 1 : 0;
  return n;
}

std::pair<DistillSet, DistillSet> split_distill_set(const DistillSet& s, double heldout_frac) {
  LLMOPT_CHECK(heldout_frac >= 0.0 && heldout_frac < 1.0);
  const size_t n = s.tokens.size(), k = static_cast<size_t>(s.k);
  const size_t n_held = static_cast<size_t>(static_cast<double>(n) * heldout_frac);
  const size_t cut = n - n_held;
  std::pair<DistillSet, DistillSet> out;
  for (DistillSet* part : {&out.first, &out.second}) {
    part->k = s.k;
    part->n_vocab = s.n_vocab;
  }
  auto take = [&](DistillSet& d, size_t b, size_t e) {
    d.tokens.assign(s.tokens.begin() + static_cast<std::ptrdiff_t>(b), s.tokens.begin() + static_cast<std::ptrdiff_t>(e));
    d.ids.assign(s.ids.begin() + static_cast<std::ptrdiff_t>(b * k), s.ids.begin() + static_cast<std::ptrdiff_t>(e * k));
    d.probs.assign(s.probs.begin() + static_cast<std::ptrdiff_t>(b * k),
                   s.probs.begin() + static_cast<std::ptrdiff_t>(e * k));
  };
  take(out.first, 0, cut);
  take(out.second, cut, n);
  return out;
}

void top_k_softmax(const float* logits, int32_t n_vocab, int32_t k, int32_t* ids, float* probs) {
  LLMOPT_CHECK(k >= 1 && k <= n_vocab);
  float mx = logits[0];
  for (int32_t i = 1; i < n_vocab; ++i) mx = std::max(mx, logits[i]);
  double sum = 0.0;
  for (int32_t i = 0; i < n_vocab; ++i) sum += std::exp(static_cast<double>(logits[i] - mx));
  std::vector<int32_t> order(static_cast<size_t>(n_vocab));
  std::iota(order.begin(), order.end(), 0);
  std::partial_sort(order.begin(), order.begin() + k, order.end(), [&](int32_t a, int32_t b) {
    return logits[a] > logits[b] || (logits[a] == logits[b] && a < b);
  });
  for (int32_t j = 0; j < k; ++j) {
    ids[j] = order[static_cast<size_t>(j)];
    probs[j] = static_cast<float>(std::exp(static_cast<double>(logits[ids[j]] - mx)) / sum);
  }
}

Status save_distill_set(const std::string& path, const DistillSet& s) {
  const size_t n = s.tokens.size(), k = static_cast<size_t>(s.k);
  LLMOPT_CHECK(s.ids.size() == n * k && s.probs.size() == n * k);
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) return error(path + ": cannot create: " + std::strerror(errno));
  Header h{};
  std::memcpy(h.magic, kMagic, 8);
  h.version = kVersion;
  h.k = static_cast<uint32_t>(s.k);
  h.n_vocab = s.n_vocab;
  h.n_tokens = n;
  bool ok = std::fwrite(&h, sizeof(h), 1, f) == 1;
  ok = ok && std::fwrite(s.tokens.data(), sizeof(int32_t), n, f) == n;
  ok = ok && std::fwrite(s.ids.data(), sizeof(int32_t), n * k, f) == n * k;
  ok = ok && std::fwrite(s.probs.data(), sizeof(float), n * k, f) == n * k;
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) return error(path + ": write failed");
  return ok_status();
}

Result<DistillSet> load_distill_set(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return error(path + ": " + std::strerror(errno));
  std::fseek(f, 0, SEEK_END);
  const long file_size = std::ftell(f);
  std::fseek(f, 0, SEEK_SET);
  Header h{};
  if (file_size < static_cast<long>(sizeof(h)) || std::fread(&h, sizeof(h), 1, f) != 1) {
    std::fclose(f);
    return error(path + ": too short for a distillation data header");
  }
  auto fail = [&](const std::string& msg) -> Result<DistillSet> {
    std::fclose(f);
    return error(path + ": " + msg);
  };
  if (std::memcmp(h.magic, kMagic, 8) != 0) return fail("not a distillation data file (bad magic)");
  if (h.version != kVersion) return fail("unsupported version " + std::to_string(h.version));
  if (h.k < 2 || h.k > 1024) return fail("top-k " + std::to_string(h.k) + " outside [2, 1024]");
  if (h.n_vocab < 2) return fail("vocabulary size " + std::to_string(h.n_vocab) + " is too small");
  const uint64_t row_bytes = 4 + 8ull * h.k;
  const uint64_t expect = sizeof(h) + h.n_tokens * row_bytes;
  if (h.n_tokens < 2 || h.n_tokens > (1ull << 40) / row_bytes || expect != static_cast<uint64_t>(file_size)) {
    return fail("header says " + std::to_string(h.n_tokens) + " tokens of top-" + std::to_string(h.k) +
                " rows (" + std::to_string(expect) + " bytes) but the file has " + std::to_string(file_size) +
                " bytes");
  }
  DistillSet s;
  s.k = static_cast<int32_t>(h.k);
  s.n_vocab = h.n_vocab;
  const size_t n = h.n_tokens, k = h.k;
  s.tokens.resize(n);
  s.ids.resize(n * k);
  s.probs.resize(n * k);
  if (std::fread(s.tokens.data(), 4, n, f) != n || std::fread(s.ids.data(), 4, n * k, f) != n * k ||
      std::fread(s.probs.data(), 4, n * k, f) != n * k) {
    return fail("read failed");
  }
  std::fclose(f);
  for (size_t i = 0; i < n; ++i) {
    if (s.tokens[i] < 0 || s.tokens[i] >= s.n_vocab) {
      return error(path + ": token " + std::to_string(i) + " has id " + std::to_string(s.tokens[i]) +
                   " outside the vocabulary of " + std::to_string(s.n_vocab));
    }
    if (i + 1 == n) break;  // the last row is unused
    for (size_t j = 0; j < k; ++j) {
      const int32_t id = s.ids[i * k + j];
      const float p = s.probs[i * k + j];
      if (id < -1 || id >= s.n_vocab || (j == 0 && id < 0) || !(p >= 0.0f && p <= 1.0f) ||
          (id < 0 && p != 0.0f)) {
        return error(path + ": row " + std::to_string(i) + " entry " + std::to_string(j) +
                     " is invalid (id " + std::to_string(id) + ", probability " + std::to_string(p) + ")");
      }
    }
  }
  return s;
}

Result<DistillSet> score_with_teacher(const Model& teacher, const std::vector<int32_t>& tokens, int32_t window,
                                      int32_t k, ThreadPool& pool,
                                      const std::function<void(size_t, size_t)>& progress) {
  const ModelConfig& cfg = teacher.config();
  if (window < 2) return error("teacher window must be at least 2 tokens");
  if (k < 2 || k > cfg.n_vocab) return error("top-k must be in [2, vocabulary size]");
  if (tokens.size() < 2) return error("need at least 2 tokens to score");
  for (int32_t t : tokens) {
    if (t < 0 || t >= cfg.n_vocab) return error("token id " + std::to_string(t) + " outside the teacher's vocabulary");
  }
  constexpr int32_t kBlock = 16;
  const int32_t n_blocks = (window + kBlock - 1) / kBlock;
  KvStore kv(cfg.n_layer, cfg.kv_dim(), n_blocks, kBlock);
  std::vector<int32_t> table(static_cast<size_t>(n_blocks));
  std::iota(table.begin(), table.end(), 0);
  DistillSet s;
  s.k = k;
  s.n_vocab = cfg.n_vocab;
  s.tokens = tokens;
  s.ids.assign(tokens.size() * static_cast<size_t>(k), -1);
  s.probs.assign(tokens.size() * static_cast<size_t>(k), 0.0f);
  ForwardOutput out;
  const size_t n_windows = (tokens.size() - 1 + static_cast<size_t>(window) - 1) / static_cast<size_t>(window);
  for (size_t w = 0; w < n_windows; ++w) {
    const size_t begin = w * static_cast<size_t>(window);
    const size_t len = std::min<size_t>(static_cast<size_t>(window), tokens.size() - 1 - begin);
    SeqInput in;
    in.tokens = std::span<const int32_t>(tokens.data() + begin, len);
    in.pos0 = 0;
    in.block_table = table;
    in.logits = LogitsMode::kAll;
    teacher.forward(std::span<const SeqInput>(&in, 1), kv, out, pool);
    for (size_t j = 0; j < len; ++j) {
      const size_t row = begin + j;
      top_k_softmax(out.logits.data() + j * static_cast<size_t>(cfg.n_vocab), cfg.n_vocab, k,
                    s.ids.data() + row * static_cast<size_t>(k), s.probs.data() + row * static_cast<size_t>(k));
    }
    if (progress) progress(w + 1, n_windows);
  }
  return s;
}

}  // namespace llmopt::train
