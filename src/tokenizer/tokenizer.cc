// Tokenizer::create (spec validation, vocabulary index, merge resolution) and the parts shared by
// both tokenizers: special-token splitting and the default piece lookup.
#include "tokenizer/tokenizer.h"

#include <algorithm>
#include <limits>

#include "tokenizer/tokenizer_impl.h"

namespace llmopt {

using tokenizer_internal::VocabIndex;

namespace tokenizer_internal {
namespace {

std::string quoted_token(std::string_view s) {
  constexpr size_t kMax = 64;
  std::string q = "'";
  q += s.size() > kMax ? std::string(s.substr(0, kMax)) + "..." : std::string(s);
  q += "'";
  return q;
}

Status check_special_id(const char* name, int32_t id, size_t n) {
  if (id < -1 || (id >= 0 && static_cast<size_t>(id) >= n)) {
    return error(std::string(name) + " id " + std::to_string(id) + " is out of range (vocabulary has " +
                 std::to_string(n) + " tokens)");
  }
  return ok_status();
}

// Resolves merge "a b" to (left, right, merged). Tokens may themselves contain spaces (HF's [a, b]
// merge form allows it), so every split point is tried and the one naming known tokens wins.
Status resolve_merge(const VocabIndex& index, const std::string& merge, size_t rank, int32_t* left,
                     int32_t* right, int32_t* merged) {
  const std::string where = "merge #" + std::to_string(rank) + " " + quoted_token(merge);
  Status first_error = error(where + ": expected two tokens separated by a space");
  bool have_error = false;
  for (size_t sp = merge.find(' '); sp != std::string::npos; sp = merge.find(' ', sp + 1)) {
    std::string_view a(merge.data(), sp);
    std::string_view b(merge.data() + sp + 1, merge.size() - sp - 1);
    if (a.empty() || b.empty()) continue;
    const int32_t ia = index.find(a);
    const int32_t ib = index.find(b);
    std::string cat(a);
    cat += b;
    const int32_t ic = index.find(cat);
    if (ia >= 0 && ib >= 0 && ic >= 0) {
      *left = ia, *right = ib, *merged = ic;
      return ok_status();
    }
    if (!have_error) {
      have_error = true;
      if (ia < 0) {
        first_error = error(where + ": " + quoted_token(a) + " is not in the vocabulary");
      } else if (ib < 0) {
        first_error = error(where + ": " + quoted_token(b) + " is not in the vocabulary");
      } else {
        first_error = error(where + ": the merged token " + quoted_token(cat) + " is not in the vocabulary");
      }
    }
  }
  return first_error;
}

}  // namespace

Result<VocabIndex> build_vocab_index(const TokenizerSpec& spec) {
  const size_t n = spec.tokens.size();
  if (n == 0) return error("tokenizer has an empty vocabulary");
  if (n > static_cast<size_t>(std::numeric_limits<int32_t>::max())) return error("vocabulary too large");
  if (!spec.scores.empty() && spec.scores.size() != n) {
    return error("tokenizer has " + std::to_string(spec.scores.size()) + " scores for " + std::to_string(n) +
                 " tokens");
  }
  if (!spec.token_types.empty() && spec.token_types.size() != n) {
    return error("tokenizer has " + std::to_string(spec.token_types.size()) + " token types for " +
                 std::to_string(n) + " tokens");
  }
  for (size_t i = 0; i < spec.token_types.size(); ++i) {
    const int32_t t = spec.token_types[i];
    if (t < 0 || t > static_cast<int32_t>(TokenType::kByte)) {
      return error("token " + std::to_string(i) + " has invalid token type " + std::to_string(t));
    }
  }
  LLMOPT_RETURN_IF_ERROR(check_special_id("BOS", spec.bos_id, n));
  LLMOPT_RETURN_IF_ERROR(check_special_id("EOS", spec.eos_id, n));
  LLMOPT_RETURN_IF_ERROR(check_special_id("UNK", spec.unk_id, n));
  LLMOPT_RETURN_IF_ERROR(check_special_id("PAD", spec.pad_id, n));

  VocabIndex index;
  index.piece_to_id.reserve(n);
  for (size_t i = 0; i < n; ++i) index.piece_to_id.emplace(spec.tokens[i], static_cast<int32_t>(i));
  index.merges.reserve(spec.merges.size());
  for (size_t r = 0; r < spec.merges.size(); ++r) {
    int32_t a = -1, b = -1, c = -1;
    LLMOPT_RETURN_IF_ERROR(resolve_merge(index, spec.merges[r], r, &a, &b, &c));
    // A repeated pair keeps its first (best) rank.
    index.merges.emplace(pair_key(a, b), MergeEntry{static_cast<int32_t>(r), c});
  }
  return index;
}

}  // namespace tokenizer_internal

Result<std::unique_ptr<Tokenizer>> Tokenizer::create(const TokenizerSpec& spec) {
  using tokenizer_internal::Gpt2Tokenizer;
  using tokenizer_internal::SpmTokenizer;
  if (spec.model != "gpt2" && spec.model != "llama") {
    return error("unsupported tokenizer model '" + spec.model + "' (expected 'gpt2' or 'llama')");
  }
  LLMOPT_ASSIGN_OR_RETURN(VocabIndex index, tokenizer_internal::build_vocab_index(spec));
  if (spec.model == "gpt2") {
    auto tok = std::make_unique<Gpt2Tokenizer>(spec, std::move(index));
    LLMOPT_RETURN_IF_ERROR(tok->init());
    return std::unique_ptr<Tokenizer>(std::move(tok));
  }
  if (spec.scores.empty() && spec.merges.empty()) {
    return error("SentencePiece-style tokenizer needs token scores or merges; it has neither");
  }
  return std::unique_ptr<Tokenizer>(std::make_unique<SpmTokenizer>(spec, std::move(index)));
}

int32_t Tokenizer::token_to_id(std::string_view piece) const {
  for (size_t i = 0; i < spec_.tokens.size(); ++i) {
    if (spec_.tokens[i] == piece) return static_cast<int32_t>(i);
  }
  return -1;
}

std::vector<int32_t> Tokenizer::encode(std::string_view text, bool add_bos, bool add_eos) const {
  std::vector<int32_t> out;
  if (add_bos && spec_.bos_id >= 0) out.push_back(spec_.bos_id);
  encode_fragment(text, &out);
  if (add_eos && spec_.eos_id >= 0) out.push_back(spec_.eos_id);
  return out;
}

std::vector<int32_t> Tokenizer::encode_with_special(std::string_view text, bool add_bos, bool add_eos) const {
  // Special pieces: control and user-defined tokens, longest first so "<|a|>b" beats "<|a|>".
  std::vector<int32_t> specials;
  for (int32_t id = 0; id < n_vocab(); ++id) {
    const TokenType t = token_type(id);
    if ((t == TokenType::kControl || t == TokenType::kUserDefined) && !spec_.tokens[id].empty()) {
      specials.push_back(id);
    }
  }
  std::stable_sort(specials.begin(), specials.end(),
                   [&](int32_t a, int32_t b) { return spec_.tokens[a].size() > spec_.tokens[b].size(); });

  bool first_byte[256] = {};
  for (int32_t id : specials) first_byte[static_cast<uint8_t>(spec_.tokens[id][0])] = true;

  std::vector<int32_t> out;
  if (add_bos && spec_.bos_id >= 0) out.push_back(spec_.bos_id);
  size_t frag_begin = 0;
  size_t pos = 0;
  while (pos < text.size()) {
    int32_t hit = -1;
    if (!first_byte[static_cast<uint8_t>(text[pos])]) {
      ++pos;
      continue;
    }
    for (int32_t id : specials) {
      const std::string& piece = spec_.tokens[id];
      if (text.compare(pos, piece.size(), piece) == 0) {
        hit = id;
        break;
      }
    }
    if (hit < 0) {
      ++pos;
      continue;
    }
    if (pos > frag_begin) encode_fragment(text.substr(frag_begin, pos - frag_begin), &out);
    out.push_back(hit);
    pos += spec_.tokens[hit].size();
    frag_begin = pos;
  }
  if (frag_begin < text.size()) encode_fragment(text.substr(frag_begin), &out);
  if (add_eos && spec_.eos_id >= 0) out.push_back(spec_.eos_id);
  return out;
}

}  // namespace llmopt
