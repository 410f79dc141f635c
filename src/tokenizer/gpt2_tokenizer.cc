// GPT-2 byte-level BPE: the bytes_to_unicode map, the GPT-2 pre-tokenizer pattern implemented by hand
// over code points, and merges by rank within each pre-token. Decoding maps characters back to bytes.
#include <cstdio>
#include <mutex>
#include <set>
#include <string>

#include "core/log.h"

#include "tokenizer/bpe_merge.h"
#include "tokenizer/tokenizer_impl.h"
#include "tokenizer/unicode.h"

namespace llmopt::tokenizer_internal {

const std::array<uint32_t, 256>& gpt2_byte_to_codepoint() {
  static const std::array<uint32_t, 256> table = [] {
    std::array<uint32_t, 256> t{};
    uint32_t next = 256;
    for (uint32_t b = 0; b < 256; ++b) {
      // Printable Latin-1 stands for itself; every other byte gets the next code point from 256 up.
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      t[b] = printable ? b : next++;
    }
    return t;
  }();
  return table;
}

std::vector<std::string_view> gpt2_pretokenize(std::string_view text) {
  using unicode::kLetter;
  using unicode::kNumber;
  using unicode::kWhitespace;
  // Decode once: code points, their class flags and byte offsets (offsets has one extra entry).
  std::vector<uint32_t> cps;
  std::vector<uint8_t> flags;
  std::vector<size_t> offsets;
  cps.reserve(text.size());
  flags.reserve(text.size());
  offsets.reserve(text.size() + 1);
  for (size_t pos = 0; pos < text.size();) {
    size_t len;
    const uint32_t cp = unicode::utf8_decode(text, pos, &len);
    cps.push_back(cp);
    flags.push_back(unicode::codepoint_flags(cp));
    offsets.push_back(pos);
    pos += len;
  }
  offsets.push_back(text.size());
  const size_t n = cps.size();

  auto is_other = [&](size_t k) { return (flags[k] & (kLetter | kNumber | kWhitespace)) == 0; };
  auto run_end = [&](size_t k, auto pred) {
    while (k < n && pred(k)) ++k;
    return k;
  };
  auto has = [&](size_t k, uint8_t f) { return (flags[k] & f) != 0; };

  // Returns the end (code point index) of the match starting at i.
  auto match = [&](size_t i) -> size_t {
    const uint32_t c = cps[i];
    // 's|'t|'re|'ve|'m|'ll|'d
    if (c == '\'' && i + 1 < n) {
      const uint32_t c1 = cps[i + 1];
      if (c1 == 's' || c1 == 't' || c1 == 'm' || c1 == 'd') return i + 2;
      if (i + 2 < n) {
        const uint32_t c2 = cps[i + 2];
        if ((c1 == 'r' && c2 == 'e') || (c1 == 'v' && c2 == 'e') || (c1 == 'l' && c2 == 'l')) return i + 3;
      }
    }
    // ` ?\p{L}+`, ` ?\p{N}+`, ` ?[^\s\p{L}\p{N}]+`: the optional space only helps when followed by
    // the class (a space is itself \s, so without it the class cannot start at i).
    const size_t s = (c == ' ') ? i + 1 : i;
    if (s < n) {
      if (has(s, kLetter)) return run_end(s, [&](size_t k) { return has(k, kLetter); });
      if (has(s, kNumber)) return run_end(s, [&](size_t k) { return has(k, kNumber); });
      if (is_other(s)) return run_end(s, is_other);
    }
    // \s+(?!\S) then \s+
    const size_t e = run_end(i, [&](size_t k) { return has(k, kWhitespace); });
    if (e == i) return i + 1;  // unreachable: every character is L, N, \s or other
    if (e == n) return e;
    // A non-space follows: give back the last space so it can lead the next word, if one remains.
    if (e - i >= 2) return e - 1;
    return e;
  };

  std::vector<std::string_view> out;
  for (size_t i = 0; i < n;) {
    const size_t j = match(i);
    out.push_back(text.substr(offsets[i], offsets[j] - offsets[i]));
    i = j;
  }
  return out;
}

PreTokenizer pre_tokenizer_for(const std::string& pre) {
  // llama.cpp (llama-vocab.cpp) gives these "\\p{N}" then the GPT-2 pattern; HF configs say
  // Sequence[Digits(individual_digits=true), ByteLevel].
  static const std::set<std::string> kDigits = {"smollm", "starcoder", "refact", "command-r",
                                                "codeshell", "exaone", "minerva"};
  static const std::set<std::string> kGpt2 = {"", "gpt-2", "gpt2", "default", "mpt", "olmo", "jais"};
  if (kDigits.count(pre)) return PreTokenizer::kDigitsThenGpt2;
  if (!kGpt2.count(pre)) {
    static std::mutex mu;
    static std::set<std::string> warned;
    std::lock_guard<std::mutex> lock(mu);
    if (warned.insert(pre).second) {
      log_warn("tokenizer: unknown pre-tokenizer '" + pre + "', using the GPT-2 pattern");
    }
  }
  return PreTokenizer::kGpt2;
}

std::vector<std::string_view> pretokenize(std::string_view text, PreTokenizer kind) {
  if (kind == PreTokenizer::kGpt2) return gpt2_pretokenize(text);
  // Each number character is a piece of its own; the GPT-2 pattern splits the text between them.
  std::vector<std::string_view> out;
  size_t frag = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t len;
    const uint32_t cp = unicode::utf8_decode(text, pos, &len);
    if (unicode::is_number(cp)) {
      if (pos > frag) {
        for (std::string_view w : gpt2_pretokenize(text.substr(frag, pos - frag))) out.push_back(w);
      }
      out.push_back(text.substr(pos, len));
      frag = pos + len;
    }
    pos += len;
  }
  if (frag < text.size()) {
    for (std::string_view w : gpt2_pretokenize(text.substr(frag))) out.push_back(w);
  }
  return out;
}

Gpt2Tokenizer::Gpt2Tokenizer(TokenizerSpec spec, VocabIndex index)
    : Tokenizer(std::move(spec)), index_(std::move(index)), pre_(pre_tokenizer_for(spec_.pre)) {}

Status Gpt2Tokenizer::init() {
  const auto& b2c = gpt2_byte_to_codepoint();
  codepoint_byte_.assign(512, -1);
  int n_missing = 0;
  int first_missing = -1;
  for (int b = 0; b < 256; ++b) {
    codepoint_byte_[b2c[b]] = static_cast<int16_t>(b);
    byte_token_[b] = index_.find(unicode::utf8_encode(b2c[b]));
    if (byte_token_[b] < 0 && n_missing++ == 0) first_missing = b;
  }
  // NOTE: real vocabularies lack a few bytes that never occur in valid UTF-8 or in training text
  // (SmolLM2: 21); a vocabulary lacking many is not byte-level at all.
  constexpr int kMaxMissingBytes = 32;
  if (n_missing > kMaxMissingBytes) {
    char hex[8];
    std::snprintf(hex, sizeof(hex), "0x%02X", first_missing);
    return error(std::string("byte-level vocabulary has no token for byte ") + hex + " ('" +
                 unicode::utf8_encode(b2c[first_missing]) + "') and " + std::to_string(n_missing - 1) +
                 " other bytes");
  }
  return ok_status();
}

void Gpt2Tokenizer::encode_fragment(std::string_view text, std::vector<int32_t>* out) const {
  std::vector<bpe::Symbol> syms;
  for (std::string_view word : pretokenize(text, pre_)) {
    syms.clear();
    for (size_t k = 0; k < word.size(); ++k) {
      const int32_t id = byte_token_[static_cast<uint8_t>(word[k])];
      if (id >= 0) bpe::push_symbol(&syms, static_cast<uint32_t>(k), 1, id);  // else dropped, as HF does
    }
    if (syms.empty()) continue;
    if (syms.size() > 1) {
      bpe::merge_symbols(&syms,
                         [this](const bpe::Symbol& l, const bpe::Symbol& r) -> std::optional<bpe::PairMerge> {
                           auto it = index_.merges.find(pair_key(l.id, r.id));
                           if (it == index_.merges.end()) return std::nullopt;
                           return bpe::PairMerge{-static_cast<double>(it->second.rank), it->second.id};
                         });
    }
    for (int32_t k = 0; k >= 0; k = syms[k].next) out->push_back(syms[k].id);
  }
}

void Gpt2Tokenizer::append_piece(int32_t id, std::string* out) const {
  if (id < 0 || id >= n_vocab()) return;
  const TokenType type = token_type(id);
  if (type == TokenType::kControl || type == TokenType::kUnknown) return;
  const std::string& piece = spec_.tokens[id];
  if (type == TokenType::kUserDefined) {  // added tokens are stored as plain text
    *out += piece;
    return;
  }
  for (size_t pos = 0; pos < piece.size();) {
    size_t len;
    const uint32_t cp = unicode::utf8_decode(piece, pos, &len);
    if (cp < codepoint_byte_.size() && codepoint_byte_[cp] >= 0) {
      out->push_back(static_cast<char>(codepoint_byte_[cp]));
    } else {
      out->append(piece, pos, len);  // not a byte character: keep it as is
    }
    pos += len;
  }
}

std::string Gpt2Tokenizer::decode(const std::vector<int32_t>& ids) const {
  std::string out;
  for (int32_t id : ids) append_piece(id, &out);
  return out;
}

std::string Gpt2Tokenizer::token_to_piece(int32_t id) const {
  std::string out;
  append_piece(id, &out);
  return out;
}

}  // namespace llmopt::tokenizer_internal
