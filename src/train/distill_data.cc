// Distillation data sets (see distill_data.h).
#include "train/distill_data.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <numeric>

#include "core/check.h"

namespace llmopt::train {
namespace {

constexpr char kDistillMagic[8] = {'L', 'L', 'M', 'O', 'D', 'I', 'S', 'T'};
constexpr uint32_t kDistillVersion = 1;

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
  std::memcpy(h.magic, kDistillMagic, 8);
  h.version = kDistillVersion;
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

Result<DistillSet> parse_distill_set(const uint8_t* data, size_t size, const std::string& name) {
  Header h{};
  if (size < sizeof(h)) return error(name + ": too short for a distillation data header");
  std::memcpy(&h, data, sizeof(h));
  auto fail = [&](const std::string& msg) -> Result<DistillSet> { return error(name + ": " + msg); };
  if (std::memcmp(h.magic, kDistillMagic, 8) != 0) return fail("not a distillation data file (bad magic)");
  if (h.version != kDistillVersion) return fail("unsupported version " + std::to_string(h.version));
  if (h.k < 2 || h.k > 1024) return fail("top-k " + std::to_string(h.k) + " outside [2, 1024]");
  if (h.n_vocab < 2) return fail("vocabulary size " + std::to_string(h.n_vocab) + " is too small");
  const uint64_t row_bytes = 4 + 8ull * h.k;
  const bool n_ok = h.n_tokens >= 2 && h.n_tokens <= (1ull << 40) / row_bytes;
  const uint64_t expect = n_ok ? sizeof(h) + h.n_tokens * row_bytes : 0;
  if (!n_ok || expect != size) {
    return fail("header says " + std::to_string(h.n_tokens) + " tokens of top-" + std::to_string(h.k) +
                " rows (" + (n_ok ? std::to_string(expect) + " bytes" : "impossible") + ") but the file has " +
                std::to_string(size) + " bytes");
  }
  DistillSet s;
  s.k = static_cast<int32_t>(h.k);
  s.n_vocab = h.n_vocab;
  const size_t n = h.n_tokens, k = h.k;
  s.tokens.resize(n);
  s.ids.resize(n * k);
  s.probs.resize(n * k);
  const uint8_t* p = data + sizeof(h);
  std::memcpy(s.tokens.data(), p, n * 4);
  std::memcpy(s.ids.data(), p + n * 4, n * k * 4);
  std::memcpy(s.probs.data(), p + n * 4 + n * k * 4, n * k * 4);
  for (size_t i = 0; i < n; ++i) {
    if (s.tokens[i] < 0 || s.tokens[i] >= s.n_vocab) {
      return fail("token " + std::to_string(i) + " has id " + std::to_string(s.tokens[i]) +
                  " outside the vocabulary of " + std::to_string(s.n_vocab));
    }
    if (i + 1 == n) break;  // the last row is unused
    for (size_t j = 0; j < k; ++j) {
      const int32_t id = s.ids[i * k + j];
      const float pr = s.probs[i * k + j];
      if (id < -1 || id >= s.n_vocab || (j == 0 && id < 0) || !(pr >= 0.0f && pr <= 1.0f) ||
          (id < 0 && pr != 0.0f)) {
        return fail("row " + std::to_string(i) + " entry " + std::to_string(j) + " is invalid (id " +
                    std::to_string(id) + ", probability " + std::to_string(pr) + ")");
      }
    }
  }
  return s;
}

Result<DistillSet> load_distill_set(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) return error(path + ": " + std::strerror(errno));
  std::vector<uint8_t> bytes;
  uint8_t buf[1 << 16];
  size_t got = 0;
  while ((got = std::fread(buf, 1, sizeof(buf), f)) > 0) bytes.insert(bytes.end(), buf, buf + got);
  const bool err = std::ferror(f) != 0;
  std::fclose(f);
  if (err) return error(path + ": read failed");
  return parse_distill_set(bytes.data(), bytes.size(), path);
}

}  // namespace llmopt::train
