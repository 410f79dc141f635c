// Internal to the tokenizer layer: the vocabulary index shared by both tokenizers (piece -> id, merge
// ranks), the two concrete tokenizers, and the GPT-2 pre-tokenizer and byte map (exposed for tests).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "core/status.h"
#include "tokenizer/tokenizer.h"

namespace llmopt::tokenizer_internal {

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
};
using PieceMap = std::unordered_map<std::string, int32_t, StringHash, std::equal_to<>>;

struct MergeEntry {
  int32_t rank;  // position in spec.merges: lower merges first
  int32_t id;    // the merged token
};

inline uint64_t pair_key(int32_t left, int32_t right) {
  return (static_cast<uint64_t>(static_cast<uint32_t>(left)) << 32) | static_cast<uint32_t>(right);
}

struct VocabIndex {
  PieceMap piece_to_id;                             // first id wins for duplicate pieces
  std::unordered_map<uint64_t, MergeEntry> merges;  // pair_key(left, right) -> merge
  int32_t find(std::string_view piece) const {
    auto it = piece_to_id.find(piece);
    return it == piece_to_id.end() ? -1 : it->second;
  }
};

// Checks the spec (sizes, ids and token types in range) and builds the index, resolving every merge
// "a b" to token ids; a merge naming an unknown token is an error.
Result<VocabIndex> build_vocab_index(const TokenizerSpec& spec);

// GPT-2 bytes_to_unicode: byte -> code point of the printable character that stands for it.
const std::array<uint32_t, 256>& gpt2_byte_to_codepoint();
// Splits text the way GPT-2's pattern
//   's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// does (leftmost alternative first, each greedy). Invalid UTF-8 bytes count as "other" characters.
std::vector<std::string_view> gpt2_pretokenize(std::string_view text);

// Pre-tokenizer variants selected by TokenizerSpec::pre (GGUF tokenizer.ggml.pre), as llama.cpp maps them.
enum class PreTokenizer {
  kGpt2,         // the GPT-2 pattern alone ("gpt-2", "default", unknown names)
  kDigitsThenGpt2,  // every \p{N} character alone first, then GPT-2 on the rest ("smollm", "starcoder", ...)
};
// The variant for a pre name; unknown names give kGpt2 and a one-time warning per name.
PreTokenizer pre_tokenizer_for(const std::string& pre);
std::vector<std::string_view> pretokenize(std::string_view text, PreTokenizer kind);

class Gpt2Tokenizer final : public Tokenizer {
 public:
  Gpt2Tokenizer(TokenizerSpec spec, VocabIndex index);
  // Fails if a byte has no single-character token (every byte-level vocabulary has all 256).
  Status init();
  std::string decode(const std::vector<int32_t>& ids) const override;
  std::string token_to_piece(int32_t id) const override;
  int32_t token_to_id(std::string_view piece) const override { return index_.find(piece); }

 protected:
  void encode_fragment(std::string_view text, std::vector<int32_t>* out) const override;

 private:
  void append_piece(int32_t id, std::string* out) const;

  VocabIndex index_;
  PreTokenizer pre_ = PreTokenizer::kGpt2;
  // byte -> id of its one-character token; -1 for the few bytes some vocabularies lack (SmolLM2 has
  // no token for 0x04, 0xC0, 0xF5..0xFF, ...): such bytes are dropped, as HF tokenizers does.
  std::array<int32_t, 256> byte_token_{};
  std::vector<int16_t> codepoint_byte_;    // mapped code point -> byte, -1 if none
};

class SpmTokenizer final : public Tokenizer {
 public:
  SpmTokenizer(TokenizerSpec spec, VocabIndex index);
  std::string decode(const std::vector<int32_t>& ids) const override;
  std::string token_to_piece(int32_t id) const override;
  int32_t token_to_id(std::string_view piece) const override { return index_.find(piece); }

  // The normalized text the merges run on: optional whitespace cleanup, the dummy prefix, and every
  // space replaced by U+2581. Empty input (after cleanup) stays empty.
  std::string normalize(std::string_view text) const;

 protected:
  void encode_fragment(std::string_view text, std::vector<int32_t>* out) const override;

 private:
  bool mergeable(int32_t id) const;
  void encode_by_score(const std::string& norm, std::vector<int32_t>* out) const;
  void encode_by_rank(const std::string& norm, std::vector<int32_t>* out) const;
  // Byte fallback for one character that is not a token: <0xNN> per byte, else (fused) unk.
  void append_unknown_char(std::string_view ch, std::vector<int32_t>* out, bool* last_was_unk) const;
  void append_piece(int32_t id, std::string* out) const;

  VocabIndex index_;
  std::array<int32_t, 256> byte_token_{};  // byte -> id of "<0xNN>", -1 if absent
  std::vector<int16_t> token_byte_;        // id -> byte value for byte tokens, -1 otherwise
};

}  // namespace llmopt::tokenizer_internal
