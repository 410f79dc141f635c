// One entry point that detects a model file's format and loads it:
//   *.gguf (magic "GGUF"), a Hugging Face directory (config.json + safetensors), a llama2.c .bin
//   (with tokenizer.bin found next to it or given explicitly).
// Every path produces the same canonical form: a WeightSource with llama.cpp tensor names and GGUF
// metadata keys (including tokenizer.ggml.*), so `convert` writes it straight to GGUF.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/mmap_file.h"
#include "core/status.h"
#include "formats/weight_source.h"
#include "model/model.h"
#include "tokenizer/tokenizer.h"

namespace llmopt {

struct LoadOptions {
  std::string tokenizer_path;  // explicit tokenizer file (llama2.c tokenizer.bin, tokenizer.json)
  bool require_tokenizer = true;
  // GGUF files: read into huge-page memory (default) or mapped (`--mmap`). Other formats are mapped.
  FileLoad gguf_load = FileLoad::kRead;
  // Rewrite Q8_0 / Q4_0 / Q4_1 / Q4_K / Q5_K / Q6_K / F32 / F16 weight matrices in place into the row-grouped layouts of the
  // int8 tile / VNNI and float kernels (DType::kQ8_0R16 ... kF16R16, kernels/repack.h) when the selected kernels have one and the file was
  // read into private memory; the same memory, faster batched products. For commands that run the
  // model; tools that read the weights as Q8_0 rows leave it off (write_gguf_model converts back).
  bool repack = false;
};

// Canonical source (GGUF names/keys) from any supported format.
Result<std::shared_ptr<const WeightSource>> open_model_source(const std::string& path,
                                                              const LoadOptions& opts = {});
// Full model: config, weights (converted to computable layouts where needed), tokenizer.
Result<std::unique_ptr<Model>> load_model(const std::string& path, const LoadOptions& opts = {});
// The same from a canonical source already in memory (synth_model, open_model_source); errors are
// prefixed with the source's origin.
Result<std::unique_ptr<Model>> load_model_from_source(std::shared_ptr<const WeightSource> src,
                                                      const LoadOptions& opts = {});

// Tokenizer <-> GGUF metadata (tokenizer.ggml.* keys).
// Absent keys take llama.cpp's defaults ("llama": <unk>=0, <s>=1, </s>=2, add_bos, add_space_prefix;
// "gpt2": neither). Errors name the key ("metadata key tokenizer.ggml.scores must be 512 floats").
Result<TokenizerSpec> tokenizer_spec_from_metadata(const Metadata& md);
// Replaces any tokenizer.ggml.* keys in md. An SPM ("llama") spec with merges but no scores also
// gets scores derived from the merge order (spm_scores_from_merges), since llama.cpp's SPM
// tokenizer merges by score; token types are derived when the spec has none.
void tokenizer_spec_to_metadata(const TokenizerSpec& spec, Metadata& md);
// True when md carries a tokenizer (tokenizer.ggml.model or .tokens, and not "none"/"no_vocab").
bool metadata_has_tokenizer(const Metadata& md);
// Scores for a merges-only BPE vocabulary such that score-driven SentencePiece merging (highest
// scoring pair result first) follows the merge ranks: the result of merge r scores -r; tokens that
// no merge produces score below every merge.
std::vector<float> spm_scores_from_merges(const TokenizerSpec& spec);

// Tokenizer spec from a file given by the user or found next to a model: tokenizer.json,
// a llama2.c tokenizer.bin, a GGUF (its tokenizer.ggml.* keys), vocab.json (merges.txt next to
// it) or a directory holding one of these.
Result<TokenizerSpec> tokenizer_spec_from_file(const std::string& path);

}  // namespace llmopt
