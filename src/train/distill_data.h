// Distillation data: a token stream with, for every position, the distribution of the NEXT token
// that the student should learn. A "soft" position carries the teacher's top-k token ids and their
// probabilities (at temperature 1, as the teacher computed them); a "hard" position carries only the
// token that actually follows (id, probability 1) — prompt text the teacher did not predict, or
// sequence boundaries. Storing only the top k (16 by default) keeps a position at 128 bytes instead
// of the teacher's whole vocabulary.
//
// File format (.dist, little-endian): "LLMODIST" magic, u32 version (1), u32 k, i32 n_vocab,
// u32 reserved (0), u64 n_tokens, then i32 tokens[n_tokens], i32 ids[n_tokens][k],
// f32 probs[n_tokens][k]. Row i describes tokens[i + 1]; the last row is unused (zeros). Unused
// slots of a row have id -1 and probability 0. The file size must match the header exactly.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/status.h"
#include "core/thread_pool.h"

namespace llmopt {
class Model;
}

namespace llmopt::train {

struct DistillSet {
  int32_t k = 16;
  int32_t n_vocab = 0;
  std::vector<int32_t> tokens;  // [n]
  std::vector<int32_t> ids;     // [n][k]
  std::vector<float> probs;     // [n][k]

  size_t size() const { return tokens.size(); }
  // A soft row has at least two ids (k >= 2 is required); a hard row exactly one.
  bool is_soft(size_t i) const { return ids[i * static_cast<size_t>(k) + 1] >= 0; }
  // A row is "open" until the token after it is known (the last row always is).
  bool row_open(size_t i) const { return ids[i * static_cast<size_t>(k)] < 0; }
  // Appends a token; the open row before it, if any, becomes a hard label pointing at it.
  void push_token(int32_t token);
  void append_hard(const std::vector<int32_t>& toks) {
    for (int32_t t : toks) push_token(t);
  }
  // Sets the last (open) row to the teacher's distribution given as raw logits; the next
  // push_token keeps it.
  void set_last_row(const float* logits);
  // Appends another set (same k and vocabulary); the open last row here points at its first token.
  void append_set(const DistillSet& other);
  size_t n_soft() const;
};

// Splits off the last floor(n · heldout_frac) tokens (and their rows) as the held-out part.
std::pair<DistillSet, DistillSet> split_distill_set(const DistillSet& s, double heldout_frac);

// The top-k entries of softmax(logits) in decreasing probability (ties by lower id), exact
// probabilities of the full softmax (computed in double).
void top_k_softmax(const float* logits, int32_t n_vocab, int32_t k, int32_t* ids, float* probs);

Status save_distill_set(const std::string& path, const DistillSet& set);
// Errors name the file and the problem (bad magic, unsupported version, sizes that disagree with
// the header, token ids outside the vocabulary, probabilities outside [0, 1]).
Result<DistillSet> load_distill_set(const std::string& path);
// The same checks on bytes in memory (`name` prefixes the errors).
Result<DistillSet> parse_distill_set(const uint8_t* data, size_t size, const std::string& name);

// Teacher forcing (distill_teacher.cc): runs `teacher` over `tokens` in consecutive windows of `window` tokens (each
// window starts with a fresh context) and records, for every position, the teacher's top-k
// distribution of the next token. progress(done, total) after each window.
Result<DistillSet> score_with_teacher(const Model& teacher, const std::vector<int32_t>& tokens, int32_t window,
                                      int32_t k, ThreadPool& pool,
                                      const std::function<void(size_t, size_t)>& progress = nullptr);

}  // namespace llmopt::train
