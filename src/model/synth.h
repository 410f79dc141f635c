// Random-weight models in named shapes, for speed tests and numerics tests.
// Weights ~ N(0, 0.02) (norm weights 1, biases 0), deterministic for a seed.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/status.h"
#include "formats/weight_source.h"
#include "model/config.h"
#include "tokenizer/tokenizer.h"

namespace llmopt {

struct SynthPreset {
  std::string name;     // "gpt2-124M", "gpt2-355M", "llama-110M", "llama-1B", "gpt2-tiny", "llama-tiny"
  ModelConfig config;
};
const std::vector<SynthPreset>& synth_presets();
std::optional<ModelConfig> find_synth_preset(const std::string& name);

struct SynthOptions {
  ModelConfig config;                      // from a preset, possibly edited (n_vocab follows the tokenizer)
  uint64_t seed = 1;
  std::optional<TokenizerSpec> tokenizer;  // when absent: a byte-level tokenizer of n_vocab tokens is made
};

// Canonical source (llama.cpp names, GGUF metadata incl. tokenizer) holding f32 weights.
Result<std::unique_ptr<MemoryWeightSource>> synth_model(const SynthOptions& opts);

}  // namespace llmopt
