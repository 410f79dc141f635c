// One entry point that detects a model file's format and loads it:
//   *.gguf (magic "GGUF"), a Hugging Face directory (config.json + safetensors), a llama2.c .bin
//   (with tokenizer.bin found next to it or given explicitly).
// Every path produces the same canonical form: a WeightSource with llama.cpp tensor names and GGUF
// metadata keys (including tokenizer.ggml.*), so `convert` writes it straight to GGUF.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "formats/weight_source.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace llmopt {

struct LoadOptions {
  std::string tokenizer_path;   // explicit tokenizer file (llama2.c tokenizer.bin, tokenizer.json)
  bool require_tokenizer = true;
};

// Canonical source (GGUF names/keys) from any supported format.
Result<std::shared_ptr<const WeightSource>> open_model_source(const std::string& path, const LoadOptions& opts = {});
// Full model: config, weights (converted to computable layouts where needed), tokenizer.
Result<std::unique_ptr<Model>> load_model(const std::string& path, const LoadOptions& opts = {});

// Tokenizer <-> GGUF metadata (tokenizer.ggml.* keys).
Result<TokenizerSpec> tokenizer_spec_from_metadata(const Metadata& md);
void tokenizer_spec_to_metadata(const TokenizerSpec& spec, Metadata& md);

}  // namespace llmopt
