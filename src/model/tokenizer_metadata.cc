// TokenizerSpec <-> GGUF tokenizer.ggml.* metadata, with llama.cpp's defaults for absent keys, so a
// tokenizer read from any source is written in a form llama.cpp loads and reads back identically.
#include <algorithm>
#include <cctype>
#include <limits>
#include <string>
#include <unordered_map>

#include "model/loader.h"

namespace llmopt {
namespace {

constexpr const char* kModel = "tokenizer.ggml.model";
constexpr const char* kPre = "tokenizer.ggml.pre";
constexpr const char* kTokens = "tokenizer.ggml.tokens";
constexpr const char* kScores = "tokenizer.ggml.scores";
constexpr const char* kTokenType = "tokenizer.ggml.token_type";
constexpr const char* kMerges = "tokenizer.ggml.merges";
constexpr const char* kBos = "tokenizer.ggml.bos_token_id";
constexpr const char* kEos = "tokenizer.ggml.eos_token_id";
constexpr const char* kUnk = "tokenizer.ggml.unknown_token_id";
constexpr const char* kPad = "tokenizer.ggml.padding_token_id";
constexpr const char* kAddBos = "tokenizer.ggml.add_bos_token";
constexpr const char* kAddEos = "tokenizer.ggml.add_eos_token";
constexpr const char* kAddSpacePrefix = "tokenizer.ggml.add_space_prefix";
constexpr const char* kRemoveExtraWs = "tokenizer.ggml.remove_extra_whitespaces";

// Special-token ids: absent keeps `def`; GGUF writes "none" as UINT32_MAX (or -1).
Status read_id(const Metadata& md, const char* key, int32_t def, int32_t* out) {
  const MetaValue* v = md.find(key);
  if (v == nullptr) {
    *out = def;
    return ok_status();
  }
  auto x = v->as_int();
  if (!x || v->is_float()) return error(std::string("metadata key ") + key + " is not an integer");
  if (*x < 0 || *x == std::numeric_limits<uint32_t>::max()) {
    *out = -1;
  } else if (*x > std::numeric_limits<int32_t>::max()) {
    return error(std::string("metadata key ") + key + " = " + std::to_string(*x) + " is out of range");
  } else {
    *out = static_cast<int32_t>(*x);
  }
  return ok_status();
}

Status read_bool(const Metadata& md, const char* key, bool* inout) {
  const MetaValue* v = md.find(key);
  if (v == nullptr) return ok_status();
  auto b = md.get_bool(key);
  if (!b) return error(std::string("metadata key ") + key + " is not a boolean");
  *inout = *b;
  return ok_status();
}

bool is_byte_piece(const std::string& s) {
  if (s.size() != 6 || s.compare(0, 3, "<0x") != 0 || s[5] != '>') return false;
  return std::isxdigit(static_cast<unsigned char>(s[3])) && std::isxdigit(static_cast<unsigned char>(s[4]));
}

// Token types when a spec has none: byte pieces, the special ids, everything else normal.
std::vector<int32_t> derive_token_types(const TokenizerSpec& spec) {
  std::vector<int32_t> types(spec.tokens.size(), static_cast<int32_t>(TokenType::kNormal));
  for (size_t i = 0; i < spec.tokens.size(); ++i) {
    if (spec.model == "llama" && is_byte_piece(spec.tokens[i]))
      types[i] = static_cast<int32_t>(TokenType::kByte);
  }
  auto mark = [&](int32_t id, TokenType t) {
    if (id >= 0 && static_cast<size_t>(id) < types.size()) types[id] = static_cast<int32_t>(t);
  };
  mark(spec.bos_id, TokenType::kControl);
  mark(spec.eos_id, TokenType::kControl);
  mark(spec.unk_id, TokenType::kUnknown);
  return types;
}

}  // namespace

bool metadata_has_tokenizer(const Metadata& md) {
  auto model = md.get_string(kModel);
  if (model && (*model == "none" || *model == "no_vocab")) return false;
  return model.has_value() || md.contains(kTokens);
}

std::vector<float> spm_scores_from_merges(const TokenizerSpec& spec) {
  std::unordered_map<std::string, int32_t> index;
  index.reserve(spec.tokens.size());
  for (size_t i = 0; i < spec.tokens.size(); ++i) index.emplace(spec.tokens[i], static_cast<int32_t>(i));
  // Tokens no merge produces (single characters, bytes, specials) rank below every merge.
  const float floor = -static_cast<float>(spec.merges.size() + 1);
  std::vector<float> scores(spec.tokens.size(), floor);
  for (size_t rank = 0; rank < spec.merges.size(); ++rank) {
    const std::string& m = spec.merges[rank];
    const size_t sp = m.find(' ', 1);
    if (sp == std::string::npos) continue;
    auto it = index.find(m.substr(0, sp) + m.substr(sp + 1));
    if (it == index.end()) continue;
    // NOTE: the earliest merge producing a token decides its score (SentencePiece picks the pair
    // whose result scores highest, which then reproduces BPE's lowest-rank-first order).
    scores[it->second] = std::max(scores[it->second], -static_cast<float>(rank));
  }
  return scores;
}

Result<TokenizerSpec> tokenizer_spec_from_metadata(const Metadata& md) {
  if (!metadata_has_tokenizer(md)) return error("no tokenizer (tokenizer.ggml.* keys are absent)");
  TokenizerSpec spec;
  auto model = md.get_string(kModel);
  if (!model) return error(std::string("metadata key ") + kModel + " is missing or not a string");
  if (*model != "llama" && *model != "gpt2") {
    return error("unsupported tokenizer model '" + *model + "' (supported: llama, gpt2)");
  }
  spec.model = *model;
  spec.pre = md.get_string(kPre).value_or(spec.model == "gpt2" ? "gpt-2" : "default");

  auto tokens = md.get_string_array(kTokens);
  if (!tokens || tokens->empty())
    return error(std::string("metadata key ") + kTokens + " is missing or empty");
  if (tokens->size() > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
    return error(std::string("metadata key ") + kTokens + " has too many entries");
  }
  spec.tokens = std::move(*tokens);
  const size_t n = spec.tokens.size();

  if (md.contains(kScores)) {
    auto scores = md.get_float_array(kScores);
    if (!scores || scores->size() != n) {
      return error(std::string("metadata key ") + kScores + " must be " + std::to_string(n) + " floats");
    }
    spec.scores = std::move(*scores);
  }
  if (md.contains(kTokenType)) {
    auto types = md.get_int_array(kTokenType);
    if (!types || types->size() != n) {
      return error(std::string("metadata key ") + kTokenType + " must be " + std::to_string(n) + " integers");
    }
    spec.token_types.reserve(n);
    for (int64_t t : *types) {
      if (t < 0 || t > static_cast<int64_t>(TokenType::kByte)) {
        return error(std::string("metadata key ") + kTokenType + " holds an unknown token type " +
                     std::to_string(t));
      }
      spec.token_types.push_back(static_cast<int32_t>(t));
    }
  }
  if (md.contains(kMerges)) {
    auto merges = md.get_string_array(kMerges);
    if (!merges) return error(std::string("metadata key ") + kMerges + " is not a string array");
    spec.merges = std::move(*merges);
  }

  // llama.cpp's defaults (llama-vocab.cpp): SPM has <unk>=0, <s>=1, </s>=2, adds BOS and a space
  // prefix; byte-level BPE adds neither.
  const bool spm = spec.model == "llama";
  LLMOPT_RETURN_IF_ERROR(read_id(md, kBos, spm ? 1 : -1, &spec.bos_id));
  LLMOPT_RETURN_IF_ERROR(read_id(md, kEos, spm ? 2 : -1, &spec.eos_id));
  LLMOPT_RETURN_IF_ERROR(read_id(md, kUnk, spm ? 0 : -1, &spec.unk_id));
  LLMOPT_RETURN_IF_ERROR(read_id(md, kPad, -1, &spec.pad_id));
  for (int32_t* id : {&spec.bos_id, &spec.eos_id, &spec.unk_id, &spec.pad_id}) {
    // Out-of-range defaults (tiny vocabularies) mean "none"; explicit keys are validated by create().
    if (*id >= static_cast<int32_t>(n)) {
      const char* key = id == &spec.bos_id   ? kBos
                        : id == &spec.eos_id ? kEos
                        : id == &spec.unk_id ? kUnk
                                             : kPad;
      if (md.contains(key)) {
        return error(std::string("metadata key ") + key + " = " + std::to_string(*id) +
                     " is not a token id (" + std::to_string(n) + " tokens)");
      }
      *id = -1;
    }
  }
  spec.add_bos = spm;
  spec.add_eos = false;
  spec.add_space_prefix = spm;
  spec.remove_extra_whitespaces = false;
  LLMOPT_RETURN_IF_ERROR(read_bool(md, kAddBos, &spec.add_bos));
  LLMOPT_RETURN_IF_ERROR(read_bool(md, kAddEos, &spec.add_eos));
  LLMOPT_RETURN_IF_ERROR(read_bool(md, kAddSpacePrefix, &spec.add_space_prefix));
  LLMOPT_RETURN_IF_ERROR(read_bool(md, kRemoveExtraWs, &spec.remove_extra_whitespaces));
  return spec;
}

void tokenizer_spec_to_metadata(const TokenizerSpec& spec, Metadata& md) {
  for (const char* key : {kModel, kPre, kTokens, kScores, kTokenType, kMerges, kBos, kEos, kUnk, kPad,
                          kAddBos, kAddEos, kAddSpacePrefix, kRemoveExtraWs}) {
    md.erase(key);
  }
  const bool spm = spec.model == "llama";
  md.set(kModel, MetaValue::from_string(spec.model));
  md.set(kPre, MetaValue::from_string(spec.pre.empty() ? (spm ? "default" : "gpt-2") : spec.pre));
  md.set(kTokens, MetaValue::from_strings(spec.tokens));
  if (spec.scores.size() == spec.tokens.size()) {
    md.set(kScores, MetaValue::from_f32s(spec.scores));
  } else if (spm && !spec.merges.empty()) {
    // llama.cpp's SPM tokenizer merges by score, not by merge list.
    md.set(kScores, MetaValue::from_f32s(spm_scores_from_merges(spec)));
  }
  md.set(kTokenType,
         MetaValue::from_i32s(spec.token_types.size() == spec.tokens.size() ? spec.token_types
                                                                            : derive_token_types(spec)));
  // Byte-level BPE needs the key even without merges: llama.cpp refuses a gpt2 vocab that lacks it.
  if (!spec.merges.empty() || !spm) md.set(kMerges, MetaValue::from_strings(spec.merges));
  // "None" is written as UINT32_MAX where an absent key would mean a default id (SPM's 0/1/2).
  auto put_id = [&](const char* key, int32_t id, bool has_default) {
    if (id >= 0) {
      md.set(key, MetaValue::from_u32(static_cast<uint32_t>(id)));
    } else if (has_default) {
      md.set(key, MetaValue::from_u32(std::numeric_limits<uint32_t>::max()));
    }
  };
  put_id(kBos, spec.bos_id, spm);
  put_id(kEos, spec.eos_id, spm);
  put_id(kUnk, spec.unk_id, spm);
  put_id(kPad, spec.pad_id, false);
  md.set(kAddBos, MetaValue::from_bool(spec.add_bos));
  md.set(kAddEos, MetaValue::from_bool(spec.add_eos));
  if (spm) md.set(kAddSpacePrefix, MetaValue::from_bool(spec.add_space_prefix));
  if (spec.remove_extra_whitespaces) md.set(kRemoveExtraWs, MetaValue::from_bool(true));
}

}  // namespace llmopt
