// Sampling as a chain of small stages over a candidate list (llama.cpp's sampler-chain idea):
// repetition penalty -> top-k -> top-p -> min-p -> temperature -> draw. Greedy is the chain with
// temperature <= 0. A chain is itself a stage, so a speculative verifier can reuse the same stages.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/status.h"

namespace llmopt {

struct SamplingParams {
  float temperature = 0.8f;   // <= 0: greedy
  int32_t top_k = 40;         // <= 0: off
  float top_p = 0.95f;        // >= 1: off
  float min_p = 0.05f;        // <= 0: off
  float repeat_penalty = 1.0f;  // 1: off
  int32_t repeat_last_n = 64;
  uint64_t seed = 0xC0FFEE;
};
// Rejects impossible values (negative temperature is fine = greedy; top_p outside (0,1], min_p
// outside [0,1], repeat_penalty <= 0, repeat_last_n < 0).
Status validate_sampling(const SamplingParams& p);

struct TokenCandidate {
  int32_t id;
  float logit;
  float p;
};

struct Candidates {
  std::vector<TokenCandidate> items;
  bool sorted = false;       // by logit, descending
  int32_t selected = -1;     // set by the final stage

  void reset(const float* logits, int32_t n_vocab);
  void sort_desc();
  // Fills p with softmax(logit) over the current items.
  void softmax();
};

class SamplerStage {
 public:
  virtual ~SamplerStage() = default;
  virtual const char* name() const = 0;
  virtual void apply(Candidates& c) = 0;
  // Told about each token that becomes part of the sequence (prompt and generated).
  virtual void accept(int32_t token) {}
  virtual void reset() {}
};

std::unique_ptr<SamplerStage> make_repetition_penalty(float penalty, int32_t last_n);
std::unique_ptr<SamplerStage> make_top_k(int32_t k);
std::unique_ptr<SamplerStage> make_top_p(float p);
std::unique_ptr<SamplerStage> make_min_p(float p);
std::unique_ptr<SamplerStage> make_temperature(float t);
std::unique_ptr<SamplerStage> make_greedy();
std::unique_ptr<SamplerStage> make_dist(uint64_t seed);

// Greedy choice over raw logits: the index of the first maximum (NaN never wins; a NaN at index 0
// stays the choice). n >= 1.
int32_t first_argmax(const float* x, int32_t n);

class SamplerChain : public SamplerStage {
 public:
  const char* name() const override { return "chain"; }
  void add(std::unique_ptr<SamplerStage> stage);
  void apply(Candidates& c) override;
  void accept(int32_t token) override;
  void reset() override;
  // Runs the chain over raw logits and returns the chosen token. A chain of greedy alone takes the
  // argmax of the logits directly (the same token: the first maximum), without building candidates.
  int32_t sample(const float* logits, int32_t n_vocab);

 private:
  std::vector<std::unique_ptr<SamplerStage>> stages_;
  bool greedy_only_ = false;  // the chain is one greedy stage (sample takes the argmax directly)
  Candidates scratch_;
};

// The standard chain for the given parameters.
std::unique_ptr<SamplerChain> make_sampler_chain(const SamplingParams& p);

}  // namespace llmopt
