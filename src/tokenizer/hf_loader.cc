// Loaders for Hugging Face tokenizer files: tokenizer.json (BPE model; byte-level or
// SentencePiece-style, told apart by the pre-tokenizer / normalizer), tokenizer_config.json for the
// special tokens, and the older GPT-2 vocab.json + merges.txt pair. Every error names the file.
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/mmap_file.h"
#include "tokenizer/tokenizer.h"
#include "tokenizer/tokenizer_impl.h"

namespace llmopt {

using nlohmann::json;

namespace {

constexpr const char* kSpaceMarker = "\xE2\x96\x81";  // U+2581 "▁"
constexpr int64_t kMaxVocab = int64_t{1} << 24;

Result<json> parse_json_file(const std::string& path) {
  LLMOPT_ASSIGN_OR_RETURN(std::string text, read_text_file(path));
  json j = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return error(path + ": not valid JSON");
  return j;
}

// Places `piece` at `id` in `tokens` (grown as needed); a different piece already there is an error.
Status place_token(const std::string& piece, const json& id_json, std::vector<std::string>* tokens,
                   std::vector<bool>* filled) {
  if (!id_json.is_number_integer()) return error("token '" + piece + "' has a non-integer id");
  const int64_t id = id_json.get<int64_t>();
  if (id < 0 || id >= kMaxVocab)
    return error("token '" + piece + "' has out-of-range id " + std::to_string(id));
  if (static_cast<size_t>(id) >= tokens->size()) {
    tokens->resize(id + 1);
    filled->resize(id + 1, false);
  }
  if ((*filled)[id] && (*tokens)[id] != piece) {
    return error("id " + std::to_string(id) + " is used by both '" + (*tokens)[id] + "' and '" + piece + "'");
  }
  (*tokens)[id] = piece;
  (*filled)[id] = true;
  return ok_status();
}

Status check_contiguous(const std::vector<bool>& filled) {
  if (filled.empty()) return error("vocabulary is empty");
  for (size_t i = 0; i < filled.size(); ++i) {
    if (!filled[i]) return error("token ids are not contiguous: no token has id " + std::to_string(i));
  }
  return ok_status();
}

Status read_vocab_object(const json& vocab, std::vector<std::string>* tokens, std::vector<bool>* filled) {
  if (!vocab.is_object()) return error("vocab is not a JSON object of piece -> id");
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    LLMOPT_RETURN_IF_ERROR(place_token(it.key(), it.value(), tokens, filled));
  }
  return ok_status();
}

int32_t find_token(const std::vector<std::string>& tokens, const std::string& piece) {
  for (size_t i = 0; i < tokens.size(); ++i) {
    if (tokens[i] == piece) return static_cast<int32_t>(i);
  }
  return -1;
}

// A special token in tokenizer_config.json: "<s>" or {"content": "<s>", ...}; empty if absent/null.
std::string config_token(const json& cfg, const char* key) {
  auto it = cfg.find(key);
  if (it == cfg.end()) return "";
  if (it->is_string()) return it->get<std::string>();
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    return (*it)["content"].get<std::string>();
  }
  return "";
}

// Flattens a "Sequence" node into its parts; null -> empty.
std::vector<json> flatten(const json& node, const char* list_key) {
  std::vector<json> out;
  if (node.is_null()) return out;
  if (node.is_object() && node.value("type", "") == "Sequence" && node.contains(list_key) &&
      node[list_key].is_array()) {
    for (const json& n : node[list_key]) out.push_back(n);
  } else {
    out.push_back(node);
  }
  return out;
}

// Sets model/pre/add_space_prefix from the normalizer and pre-tokenizer, refusing pipelines this
// engine would tokenize differently from the reference.
Status detect_kind(const json& root, TokenizerSpec* spec) {
  const std::vector<json> pre = flatten(root.value("pre_tokenizer", json()), "pretokenizers");
  const std::vector<json> norm = flatten(root.value("normalizer", json()), "normalizers");
  bool byte_level = false;
  for (const json& p : pre) byte_level = byte_level || (p.is_object() && p.value("type", "") == "ByteLevel");
  if (byte_level) {
    if (pre.size() != 1) return error("byte-level pre-tokenizer combined with others is not supported");
    if (!pre[0].value("use_regex", true))
      return error("ByteLevel pre-tokenizer without use_regex is not supported");
    if (pre[0].value("add_prefix_space", false)) {
      return error("ByteLevel pre-tokenizer with add_prefix_space=true is not supported");
    }
    if (!norm.empty()) return error("a normalizer with a byte-level pre-tokenizer is not supported");
    spec->model = "gpt2";
    spec->pre = "gpt-2";
    return ok_status();
  }
  bool prefix = false;
  bool replace = false;
  for (const json& n : norm) {
    const std::string type = n.is_object() ? n.value("type", "") : "";
    if (type == "Prepend" && n.value("prepend", "") == kSpaceMarker) {
      prefix = true;
    } else if (type == "Replace" && n.contains("pattern") && n["pattern"].is_object() &&
               n["pattern"].value("String", "") == " " && n.value("content", "") == kSpaceMarker) {
      replace = true;
    } else {
      return error("normalizer '" + type + "' is not supported (expected Prepend/Replace with U+2581)");
    }
  }
  for (const json& p : pre) {
    const std::string type = p.is_object() ? p.value("type", "") : "";
    if (type != "Metaspace") return error("pre-tokenizer '" + type + "' is not supported");
    if (p.value("replacement", kSpaceMarker) != kSpaceMarker)
      return error("Metaspace replacement must be U+2581");
    if (p.value("split", false)) return error("Metaspace pre-tokenizer with split=true is not supported");
    replace = true;
    const json scheme = p.value("prepend_scheme", json());
    if (scheme.is_string()) {
      prefix = prefix || scheme.get<std::string>() != "never";
    } else {
      prefix = prefix || p.value("add_prefix_space", true);
    }
  }
  if (!replace) {
    return error(
        "neither a byte-level pre-tokenizer nor a U+2581 space normalizer/Metaspace: unsupported BPE "
        "tokenizer");
  }
  spec->model = "llama";
  spec->pre = "default";
  spec->add_space_prefix = prefix;
  spec->remove_extra_whitespaces = false;
  return ok_status();
}

void set_type(TokenizerSpec* spec, int32_t id, TokenType t) {
  if (id >= 0) spec->token_types[id] = static_cast<int32_t>(t);
}

Result<TokenizerSpec> parse_hf(const json& root, const std::string& path) {
  if (!root.is_object() || !root.contains("model") || !root["model"].is_object()) {
    return error("no \"model\" object");
  }
  const json& model = root["model"];
  const std::string type = model.value("type", "BPE");
  if (type != "BPE") return error("model type '" + type + "' is not supported (only BPE)");
  if (!model.contains("vocab")) return error("model has no vocab");
  if (model.value("continuing_subword_prefix", json()).is_string() &&
      !model["continuing_subword_prefix"].get<std::string>().empty()) {
    return error("continuing_subword_prefix is not supported");
  }
  if (model.value("end_of_word_suffix", json()).is_string() &&
      !model["end_of_word_suffix"].get<std::string>().empty()) {
    return error("end_of_word_suffix is not supported");
  }

  TokenizerSpec spec;
  LLMOPT_RETURN_IF_ERROR(detect_kind(root, &spec));
  std::vector<bool> filled;
  LLMOPT_RETURN_IF_ERROR(read_vocab_object(model["vocab"], &spec.tokens, &filled));
  std::vector<std::pair<int32_t, bool>> added;  // (id, special)
  if (root.contains("added_tokens") && !root["added_tokens"].is_null()) {
    if (!root["added_tokens"].is_array()) return error("added_tokens is not an array");
    for (const json& a : root["added_tokens"]) {
      if (!a.is_object() || !a.contains("content") || !a["content"].is_string() || !a.contains("id")) {
        return error("added_tokens entry without string content and id");
      }
      LLMOPT_RETURN_IF_ERROR(place_token(a["content"].get<std::string>(), a["id"], &spec.tokens, &filled));
      added.emplace_back(a["id"].get<int32_t>(), a.value("special", false));
    }
  }
  LLMOPT_RETURN_IF_ERROR(check_contiguous(filled));
  spec.token_types.assign(spec.tokens.size(), static_cast<int32_t>(TokenType::kNormal));
  if (spec.model == "llama") {
    for (size_t i = 0; i < spec.tokens.size(); ++i) {
      const std::string& t = spec.tokens[i];
      if (t.size() == 6 && t.compare(0, 3, "<0x") == 0 && t[5] == '>') {
        spec.token_types[i] = static_cast<int32_t>(TokenType::kByte);
      }
    }
  }
  for (auto [id, special] : added)
    set_type(&spec, id, special ? TokenType::kControl : TokenType::kUserDefined);

  if (model.contains("merges") && !model["merges"].is_null()) {
    if (!model["merges"].is_array()) return error("merges is not an array");
    spec.merges.reserve(model["merges"].size());
    for (const json& m : model["merges"]) {
      if (m.is_string()) {
        spec.merges.push_back(m.get<std::string>());
      } else if (m.is_array() && m.size() == 2 && m[0].is_string() && m[1].is_string()) {
        spec.merges.push_back(m[0].get<std::string>() + " " + m[1].get<std::string>());
      } else {
        return error("merge #" + std::to_string(spec.merges.size()) +
                     " is neither \"a b\" nor [\"a\", \"b\"]");
      }
    }
  }
  if (model.value("unk_token", json()).is_string()) {
    spec.unk_id = find_token(spec.tokens, model["unk_token"].get<std::string>());
  }

  // Special tokens: tokenizer_config.json when present, else conventions of the two families.
  const std::filesystem::path cfg_path = std::filesystem::path(path).parent_path() / "tokenizer_config.json";
  std::error_code ec;
  json cfg = json::object();
  if (std::filesystem::exists(cfg_path, ec)) {
    LLMOPT_ASSIGN_OR_RETURN(cfg, parse_json_file(cfg_path.string()));
    if (!cfg.is_object()) return error(cfg_path.string() + ": not a JSON object");
  }
  auto resolve = [&](const char* key, int32_t* id) -> Status {
    const std::string piece = config_token(cfg, key);
    if (piece.empty()) return ok_status();
    *id = find_token(spec.tokens, piece);
    if (*id < 0) return error(cfg_path.string() + ": " + key + " '" + piece + "' is not in the vocabulary");
    return ok_status();
  };
  LLMOPT_RETURN_IF_ERROR(resolve("bos_token", &spec.bos_id));
  LLMOPT_RETURN_IF_ERROR(resolve("eos_token", &spec.eos_id));
  LLMOPT_RETURN_IF_ERROR(resolve("unk_token", &spec.unk_id));
  LLMOPT_RETURN_IF_ERROR(resolve("pad_token", &spec.pad_id));
  if (spec.model == "gpt2") {
    const int32_t eot = find_token(spec.tokens, "<|endoftext|>");
    if (spec.bos_id < 0) spec.bos_id = eot;
    if (spec.eos_id < 0) spec.eos_id = eot;
  } else {
    // The post-processor template tells whether (and which) BOS is added.
    bool template_bos = false;
    const json pp = root.value("post_processor", json());
    if (pp.is_object() && pp.value("type", "") == "TemplateProcessing" && pp.contains("single") &&
        pp["single"].is_array() && !pp["single"].empty() && pp["single"][0].is_object() &&
        pp["single"][0].contains("SpecialToken")) {
      const std::string piece = pp["single"][0]["SpecialToken"].value("id", "");
      const int32_t id = find_token(spec.tokens, piece);
      if (id >= 0) {
        template_bos = true;
        if (spec.bos_id < 0) spec.bos_id = id;
      }
    }
    if (spec.bos_id < 0) spec.bos_id = find_token(spec.tokens, "<s>");
    if (spec.eos_id < 0) spec.eos_id = find_token(spec.tokens, "</s>");
    spec.add_bos = template_bos;
  }
  if (cfg.contains("add_bos_token") && cfg["add_bos_token"].is_boolean())
    spec.add_bos = cfg["add_bos_token"].get<bool>();
  if (cfg.contains("add_eos_token") && cfg["add_eos_token"].is_boolean())
    spec.add_eos = cfg["add_eos_token"].get<bool>();
  for (int32_t id : {spec.bos_id, spec.eos_id}) set_type(&spec, id, TokenType::kControl);
  return spec;
}

}  // namespace

Result<TokenizerSpec> tokenizer_spec_from_hf_json(const std::string& tokenizer_json_path) {
  LLMOPT_ASSIGN_OR_RETURN(json root, parse_json_file(tokenizer_json_path));
  Result<TokenizerSpec> spec = error("");
  try {
    spec = parse_hf(root, tokenizer_json_path);
  } catch (const json::exception& e) {
    return error(tokenizer_json_path + ": unexpected JSON structure: " + e.what());
  }
  if (!spec.ok()) return spec.status().with_context(tokenizer_json_path);
  Result<tokenizer_internal::VocabIndex> index = tokenizer_internal::build_vocab_index(*spec);
  if (!index.ok()) return index.status().with_context(tokenizer_json_path);
  return spec;
}

Result<TokenizerSpec> tokenizer_spec_from_vocab_merges(const std::string& vocab_json,
                                                       const std::string& merges_txt) {
  TokenizerSpec spec;
  spec.model = "gpt2";
  spec.pre = "gpt-2";
  {
    LLMOPT_ASSIGN_OR_RETURN(json vocab, parse_json_file(vocab_json));
    std::vector<bool> filled;
    Status st = read_vocab_object(vocab, &spec.tokens, &filled);
    if (st.ok()) st = check_contiguous(filled);
    if (!st.ok()) return st.with_context(vocab_json);
  }
  LLMOPT_ASSIGN_OR_RETURN(std::string merges, read_text_file(merges_txt));
  size_t line_no = 0;
  for (size_t pos = 0; pos < merges.size();) {
    size_t end = merges.find('\n', pos);
    if (end == std::string::npos) end = merges.size();
    std::string line = merges.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty() || (line_no == 1 && line.rfind("#version", 0) == 0)) continue;
    if (line.find(' ') == std::string::npos) {
      return error(merges_txt + ": line " + std::to_string(line_no) + " is not a merge \"a b\": '" + line +
                   "'");
    }
    spec.merges.push_back(std::move(line));
  }
  spec.token_types.assign(spec.tokens.size(), static_cast<int32_t>(TokenType::kNormal));
  const int32_t eot = find_token(spec.tokens, "<|endoftext|>");
  spec.bos_id = spec.eos_id = eot;
  set_type(&spec, eot, TokenType::kControl);
  Result<tokenizer_internal::VocabIndex> index = tokenizer_internal::build_vocab_index(spec);
  if (!index.ok()) return index.status().with_context(merges_txt);
  return spec;
}

}  // namespace llmopt
