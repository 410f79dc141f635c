// Shared helpers of the training tests: tiny model configs and perturbed parameters.
#pragma once

#include <vector>

#include "model/config.h"
#include "train/params.h"
#include "train/rng.h"

namespace llmopt::train::testing {

// LLaMA with GQA (4 query heads, 2 K/V heads), tied head.
inline ModelConfig tiny_llama(int32_t dim = 16, int32_t vocab = 50, int32_t ctx = 8) {
  ModelConfig c;
  c.arch = Arch::kLlama;
  c.n_vocab = vocab;
  c.n_ctx_train = ctx;
  c.n_embd = dim;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_head_kv = 2;
  c.n_ff = dim * 3 / 2;
  c.norm_eps = 1e-5f;
  c.rope_theta = 10000.0f;
  c.tied_head = true;
  return c;
}

inline ModelConfig tiny_gpt2(int32_t dim = 16, int32_t vocab = 50, int32_t ctx = 8) {
  ModelConfig c;
  c.arch = Arch::kGpt2;
  c.n_vocab = vocab;
  c.n_ctx_train = ctx;
  c.n_embd = dim;
  c.n_layer = 2;
  c.n_head = 4;
  c.n_head_kv = 4;
  c.n_ff = dim * 2;
  c.norm_eps = 1e-5f;
  c.tied_head = true;
  return c;
}

// init_params plus N(0, noise) on every element, so norm weights and biases are not the trivial
// 1 / 0 and attention is far from uniform: every gradient path carries signal.
inline std::vector<float> perturbed_params(const ParamLayout& layout, uint64_t seed, double noise = 0.2) {
  std::vector<float> p = init_params(layout, seed);
  Rng rng(seed * 7919 + 1);
  for (float& v : p) v += static_cast<float>(rng.normal() * noise);
  return p;
}

inline std::vector<int32_t> random_tokens(size_t n, int32_t vocab, uint64_t seed) {
  Rng rng(seed);
  std::vector<int32_t> t(n);
  for (auto& v : t) v = static_cast<int32_t>(rng.below(static_cast<uint64_t>(vocab)));
  return t;
}

}  // namespace llmopt::train::testing
