// Tokenizers: GPT-2 byte-level BPE (exact GPT-2 pre-tokenizer) and SentencePiece-style BPE with byte
// fallback (LLaMA, llama2.c, HF tokenizer.json). Both are built from one TokenizerSpec, which mirrors
// GGUF's tokenizer.ggml.* keys, so any source (GGUF metadata, tokenizer.json, vocab.json+merges.txt,
// tokenizer.bin) becomes a spec first.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/status.h"

namespace llmopt {

// GGUF token types (tokenizer.ggml.token_type).
enum class TokenType : int32_t {
  kUndefined = 0, kNormal = 1, kUnknown = 2, kControl = 3, kUserDefined = 4, kUnused = 5, kByte = 6,
};

struct TokenizerSpec {
  // "gpt2" (byte-level BPE) or "llama" (SentencePiece BPE), as tokenizer.ggml.model.
  std::string model;
  // Pre-tokenizer name as tokenizer.ggml.pre ("gpt-2", "smollm", ...): byte-level BPE picks its split
  // pattern by it (see PreTokenizer in tokenizer_impl.h); unknown names use GPT-2's, with a warning.
  std::string pre;
  std::vector<std::string> tokens;       // pieces as stored (byte-level: GPT-2 unicode-mapped strings)
  std::vector<float> scores;             // SentencePiece: merge priority (higher first); may be empty
  std::vector<int32_t> token_types;      // TokenType values; may be empty (all normal)
  std::vector<std::string> merges;       // byte-level BPE (and HF BPE): "a b" in rank order
  int32_t bos_id = -1, eos_id = -1, unk_id = -1, pad_id = -1;
  bool add_bos = false;
  bool add_eos = false;
  // SentencePiece normalization: prepend "▁" (add_dummy_prefix) and, optionally, collapse runs of
  // spaces and strip leading/trailing spaces (remove_extra_whitespaces).
  bool add_space_prefix = true;
  bool remove_extra_whitespaces = false;
};

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  // Validates the spec (ids in range, merges refer to tokens, ...) and builds the tokenizer.
  static Result<std::unique_ptr<Tokenizer>> create(const TokenizerSpec& spec);

  // Text -> ids. add_bos/add_eos are applied only if the model has those tokens.
  std::vector<int32_t> encode(std::string_view text, bool add_bos, bool add_eos = false) const;
  // Ids -> text (control tokens such as BOS/EOS render as nothing). Byte tokens are reassembled.
  virtual std::string decode(const std::vector<int32_t>& ids) const = 0;
  // The text one token contributes (for streaming); may be a partial UTF-8 sequence.
  virtual std::string token_to_piece(int32_t id) const = 0;

  // Like encode, but text equal to a control or user-defined token's piece (e.g. "<|endoftext|>",
  // "</s>") becomes that token; the text between them is encoded as by encode (for SentencePiece, each
  // such fragment gets its own dummy prefix, as llama.cpp does).
  std::vector<int32_t> encode_with_special(std::string_view text, bool add_bos, bool add_eos = false) const;
  // Id of a piece exactly as stored in the vocabulary (e.g. "<|endoftext|>", "▁the"); -1 if absent.
  virtual int32_t token_to_id(std::string_view piece) const;
  TokenType token_type(int32_t id) const {
    if (id < 0 || id >= n_vocab()) return TokenType::kUndefined;
    return spec_.token_types.empty() ? TokenType::kNormal : static_cast<TokenType>(spec_.token_types[id]);
  }

  const TokenizerSpec& spec() const { return spec_; }
  int32_t n_vocab() const { return static_cast<int32_t>(spec_.tokens.size()); }
  int32_t bos() const { return spec_.bos_id; }
  int32_t eos() const { return spec_.eos_id; }
  bool add_bos_default() const { return spec_.add_bos; }

 protected:
  explicit Tokenizer(TokenizerSpec spec) : spec_(std::move(spec)) {}
  // Appends the ids of plain text (no BOS/EOS, no special-token parsing): what each tokenizer defines.
  virtual void encode_fragment(std::string_view text, std::vector<int32_t>* out) const = 0;
  TokenizerSpec spec_;
};

// Loaders from tokenizer files (the GGUF metadata loader lives in the model layer, which knows GGUF).
// HF tokenizer.json (model.type "BPE": byte-level (ByteLevel pre-tokenizer) or SentencePiece-style
// (Metaspace / Prepend+Replace normalizer, byte_fallback)). Special tokens from added_tokens; bos/eos
// from tokenizer_config.json next to it when present.
Result<TokenizerSpec> tokenizer_spec_from_hf_json(const std::string& tokenizer_json_path);
// GPT-2 vocab.json + merges.txt (byte-level BPE); eos = bos = "<|endoftext|>".
Result<TokenizerSpec> tokenizer_spec_from_vocab_merges(const std::string& vocab_json, const std::string& merges_txt);
// llama2.c tokenizer.bin: u32 max_token_length, then per token f32 score, i32 len, bytes.
// BOS=1, EOS=2, "<0xNN>" pieces are byte tokens, UNK=0.
Result<TokenizerSpec> tokenizer_spec_from_llama2c(const std::string& tokenizer_bin_path);

}  // namespace llmopt
