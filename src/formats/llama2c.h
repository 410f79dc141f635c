// llama2.c checkpoints (legacy .bin: 7 x int32 header, then fp32 weights) and tokenizer.bin.
// The checkpoint is presented with llama.cpp's GGUF tensor names and `llama.*` metadata keys,
// exactly as llama.cpp's convert-llama2c-to-ggml lays it out (Q/K rows are not permuted: llama2.c
// already uses the adjacent-pair RoPE layout of GGUF's llama).
#pragma once

#include <memory>
#include <string>

#include "core/status.h"
#include "formats/weight_source.h"

namespace llmopt {

// Header: dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size (negative = untied classifier
// follows the weights), seq_len. Metadata produced: general.architecture = "llama", llama.context_length,
// llama.embedding_length, llama.feed_forward_length, llama.block_count, llama.attention.head_count,
// llama.attention.head_count_kv, llama.rope.dimension_count, llama.attention.layer_norm_rms_epsilon (1e-5),
// llama.rope.freq_base (10000), llama.vocab_size. No tokenizer keys (see the tokenizer layer).
Result<std::unique_ptr<WeightSource>> open_llama2c(const std::string& path);

// True if the file looks like a llama2.c checkpoint (sane header and size matches the implied layout).
bool looks_like_llama2c(const uint8_t* data, size_t size);

}  // namespace llmopt
