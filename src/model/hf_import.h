// Hugging Face model directories (config.json + model.safetensors or a sharded index) imported into
// the canonical form: llama.cpp tensor names, GGUF metadata keys, GGUF's tensor layouts (Conv1D
// weights transposed, LLaMA Q/K rows permuted to adjacent-pair RoPE). Tokenizer keys are added by
// the loader, which also knows the tokenizer files.
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "formats/weight_source.h"

namespace llmopt {

// Supported config.json architectures[0] values.
inline constexpr const char* kHfSupportedArchitectures = "GPT2LMHeadModel, LlamaForCausalLM";

// Reads `dir`/config.json and the safetensors weights next to it. Errors name the file and the
// problem ("<dir>/config.json: unsupported architecture 'X' ...", "<dir>/model.safetensors: missing
// tensor 'model.norm.weight'").
Result<std::unique_ptr<MemoryWeightSource>> import_hf_model(const std::string& dir);

}  // namespace llmopt
