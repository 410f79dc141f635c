// SentencePiece-style BPE (LLaMA, llama2.c, HF tokenizer.json with a "▁" normalizer): normalization,
// merges by score (SentencePiece / llama.cpp: the adjacent pair whose concatenation is the
// highest-scoring token) or, when the spec carries merges, by merge rank (HF tokenizers), and byte
// fallback to <0xNN> tokens. Decoding turns "▁" back into spaces and drops the dummy prefix.
#include <cstdio>

#include "tokenizer/bpe_merge.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

namespace llmopt::tokenizer_internal {

namespace {

constexpr std::string_view kSpmSpaceMarker = "\xE2\x96\x81";  // U+2581 "▁"

// "<0xNN>" -> NN, or -1.
int parse_byte_piece(const std::string& piece) {
  if (piece.size() != 6 || piece[0] != '<' || piece[1] != '0' || piece[2] != 'x' || piece[5] != '>')
    return -1;
  int v = 0;
  for (int k = 3; k < 5; ++k) {
    const char c = piece[k];
    int d;
    if (c >= '0' && c <= '9') {
      d = c - '0';
    } else if (c >= 'A' && c <= 'F') {
      d = c - 'A' + 10;
    } else if (c >= 'a' && c <= 'f') {
      d = c - 'a' + 10;
    } else {
      return -1;
    }
    v = v * 16 + d;
  }
  return v;
}

}  // namespace

SpmTokenizer::SpmTokenizer(TokenizerSpec spec, VocabIndex index)
    : Tokenizer(std::move(spec)), index_(std::move(index)) {
  byte_token_.fill(-1);
  token_byte_.assign(spec_.tokens.size(), -1);
  // Byte tokens: typed as such, or (when the spec carries no types) spelled "<0xNN>".
  for (int32_t id = 0; id < n_vocab(); ++id) {
    const TokenType t = token_type(id);
    if (!spec_.token_types.empty() && t != TokenType::kByte) continue;
    const int b = parse_byte_piece(spec_.tokens[id]);
    if (b < 0) continue;
    token_byte_[id] = static_cast<int16_t>(b);
    if (byte_token_[b] < 0) byte_token_[b] = id;
  }
}

std::string SpmTokenizer::normalize(std::string_view text) const {
  std::string cleaned;
  if (spec_.remove_extra_whitespaces) {
    // SentencePiece: drop leading and trailing spaces, collapse inner runs to one (U+0020 only).
    cleaned.reserve(text.size());
    bool pending_space = false;
    for (char c : text) {
      if (c == ' ') {
        pending_space = !cleaned.empty();
        continue;
      }
      if (pending_space) cleaned.push_back(' ');
      pending_space = false;
      cleaned.push_back(c);
    }
    text = cleaned;
  }
  std::string out;
  if (text.empty()) return out;
  out.reserve(text.size() + text.size() / 2 + 3);
  if (spec_.add_space_prefix) out += kSpmSpaceMarker;
  for (char c : text) {
    if (c == ' ') {
      out += kSpmSpaceMarker;
    } else {
      out.push_back(c);
    }
  }
  return out;
}

// SentencePiece only merges into normal, user-defined and unused pieces; control, byte and unknown
// pieces are never produced by merging characters.
bool SpmTokenizer::mergeable(int32_t id) const {
  const TokenType t = token_type(id);
  return t != TokenType::kControl && t != TokenType::kByte && t != TokenType::kUnknown;
}

void SpmTokenizer::append_unknown_char(std::string_view ch, std::vector<int32_t>* out,
                                       bool* last_was_unk) const {
  bool have_bytes = true;
  for (char c : ch) have_bytes = have_bytes && byte_token_[static_cast<uint8_t>(c)] >= 0;
  if (have_bytes) {
    for (char c : ch) out->push_back(byte_token_[static_cast<uint8_t>(c)]);
    *last_was_unk = false;
    return;
  }
  // No byte tokens: one unknown token for a run of unknown characters.
  if (spec_.unk_id >= 0 && !*last_was_unk) out->push_back(spec_.unk_id);
  *last_was_unk = true;
}

void SpmTokenizer::encode_by_score(const std::string& norm, std::vector<int32_t>* out) const {
  std::vector<bpe::Symbol> syms;
  syms.reserve(norm.size());
  for (size_t pos = 0; pos < norm.size();) {
    const size_t len = unicode::utf8_char_len(norm, pos);
    int32_t id = index_.find(std::string_view(norm).substr(pos, len));
    if (id >= 0 && !mergeable(id)) id = -1;
    bpe::push_symbol(&syms, static_cast<uint32_t>(pos), static_cast<uint32_t>(len), id);
    pos += len;
  }
  if (syms.empty()) return;
  const bool have_scores = !spec_.scores.empty();
  bpe::merge_symbols(&syms, [&](const bpe::Symbol& l, const bpe::Symbol& r) -> std::optional<bpe::PairMerge> {
    const int32_t id = index_.find(std::string_view(norm).substr(l.start, l.len + r.len));
    if (id < 0 || !mergeable(id)) return std::nullopt;
    return bpe::PairMerge{have_scores ? static_cast<double>(spec_.scores[id]) : 0.0, id};
  });
  bool last_was_unk = false;
  for (int32_t k = 0; k >= 0; k = syms[k].next) {
    if (syms[k].id >= 0) {
      out->push_back(syms[k].id);
      last_was_unk = false;
    } else {
      // Only single characters can be left without a token: merges always produce tokens.
      append_unknown_char(std::string_view(norm).substr(syms[k].start, syms[k].len), out, &last_was_unk);
    }
  }
}

void SpmTokenizer::encode_by_rank(const std::string& norm, std::vector<int32_t>* out) const {
  // HF tokenizers' BPE: characters become tokens (or byte tokens, or a fused unknown) first, then
  // merges apply by rank over token-id pairs.
  std::vector<bpe::Symbol> syms;
  syms.reserve(norm.size());
  bool last_was_unk = false;
  std::vector<int32_t> ids;
  for (size_t pos = 0; pos < norm.size();) {
    const size_t len = unicode::utf8_char_len(norm, pos);
    const std::string_view ch = std::string_view(norm).substr(pos, len);
    const int32_t id = index_.find(ch);
    if (id >= 0) {
      bpe::push_symbol(&syms, static_cast<uint32_t>(pos), static_cast<uint32_t>(len), id);
      last_was_unk = false;
    } else {
      ids.clear();
      const bool was_unk = last_was_unk;
      append_unknown_char(ch, &ids, &last_was_unk);
      if (was_unk && last_was_unk && spec_.unk_id >= 0) {
        syms.back().len += static_cast<uint32_t>(len);  // fused into the previous unknown
      } else {
        uint32_t at = static_cast<uint32_t>(pos);
        for (int32_t t : ids) {
          const uint32_t n = token_byte_[t] >= 0 ? 1 : static_cast<uint32_t>(len);
          bpe::push_symbol(&syms, at, n, t);
          at += n;
        }
      }
    }
    pos += len;
  }
  if (syms.empty()) return;
  bpe::merge_symbols(&syms,
                     [this](const bpe::Symbol& l, const bpe::Symbol& r) -> std::optional<bpe::PairMerge> {
                       auto it = index_.merges.find(pair_key(l.id, r.id));
                       if (it == index_.merges.end()) return std::nullopt;
                       return bpe::PairMerge{-static_cast<double>(it->second.rank), it->second.id};
                     });
  for (int32_t k = 0; k >= 0; k = syms[k].next) out->push_back(syms[k].id);
}

void SpmTokenizer::encode_fragment(std::string_view text, std::vector<int32_t>* out) const {
  const std::string norm = normalize(text);
  if (norm.empty()) return;
  if (spec_.merges.empty()) {
    encode_by_score(norm, out);
  } else {
    encode_by_rank(norm, out);
  }
}

void SpmTokenizer::append_piece(int32_t id, std::string* out) const {
  if (id < 0 || id >= n_vocab()) return;
  const TokenType type = token_type(id);
  if (type == TokenType::kControl || type == TokenType::kUnknown) return;
  if (token_byte_[id] >= 0) {
    out->push_back(static_cast<char>(token_byte_[id]));
    return;
  }
  const std::string& piece = spec_.tokens[id];
  for (size_t pos = 0; pos < piece.size();) {
    if (piece.compare(pos, kSpmSpaceMarker.size(), kSpmSpaceMarker) == 0) {
      out->push_back(' ');
      pos += kSpmSpaceMarker.size();
    } else {
      out->push_back(piece[pos++]);
    }
  }
}

std::string SpmTokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) append_piece(id, &out);
  // The dummy prefix added by encode (llama.cpp and HF strip one leading space).
  if (spec_.add_space_prefix && !out.empty() && out[0] == ' ') out.erase(0, 1);
  return out;
}

std::string SpmTokenizer::token_to_piece(int32_t id) const {
  std::string out;
  append_piece(id, &out);
  return out;
}

}  // namespace llmopt::tokenizer_internal
