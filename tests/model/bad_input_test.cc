// Bad model inputs get a specific error naming the file and the problem, never a crash: unknown
// architectures (GGUF metadata, config.json), missing tokenizers, tensor types the engine cannot
// compute with, safetensors missing a tensor, malformed configs and unrecognized files.
#include <gtest/gtest.h>

#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "formats/gguf.h"
#include "model/loader.h"
#include "model/synth.h"
#include "test_util.h"

namespace llmopt {
namespace {

using nlohmann::json;

void expect_error(const Status& st, const std::vector<std::string>& parts) {
  ASSERT_FALSE(st.ok());
  for (const std::string& p : parts) EXPECT_NE(st.message().find(p), std::string::npos) << st.message();
}

template <class T>
void expect_error(const Result<T>& r, const std::vector<std::string>& parts) {
  ASSERT_FALSE(r.ok());
  expect_error(r.status(), parts);
}

// A safetensors file of F32 tensors filled with `value`.
void write_safetensors(const std::string& path,
                       const std::vector<std::pair<std::string, std::vector<int64_t>>>& ts,
                       float value = 0.01f) {
  json header = json::object();
  std::string data;
  for (const auto& [name, shape] : ts) {
    int64_t n = 1;
    for (int64_t d : shape) n *= d;
    std::vector<float> v(static_cast<size_t>(n), value);
    const size_t begin = data.size();
    data.append(reinterpret_cast<const char*>(v.data()), v.size() * 4);
    header[name] = {{"dtype", "F32"}, {"shape", shape}, {"data_offsets", {begin, data.size()}}};
  }
  std::string h = header.dump();
  while (h.size() % 8 != 0) h += ' ';
  uint64_t len = h.size();
  std::string bytes(reinterpret_cast<const char*>(&len), 8);
  test::write_file(path, bytes + h + data);
}

// A tiny HF LLaMA directory; `drop` names a tensor to leave out.
std::string write_hf_llama(const std::string& drop = "", json config_patch = json::object()) {
  const std::string dir = test::temp_dir();
  json cfg = {{"architectures", {"LlamaForCausalLM"}},
              {"hidden_size", 8},
              {"intermediate_size", 16},
              {"num_hidden_layers", 1},
              {"num_attention_heads", 2},
              {"num_key_value_heads", 1},
              {"vocab_size", 300},
              {"tie_word_embeddings", true}};
  cfg.update(config_patch);
  test::write_file(dir + "/config.json", cfg.dump());
  std::vector<std::pair<std::string, std::vector<int64_t>>> ts = {
      {"model.embed_tokens.weight", {300, 8}},
      {"model.layers.0.input_layernorm.weight", {8}},
      {"model.layers.0.self_attn.q_proj.weight", {8, 8}},
      {"model.layers.0.self_attn.k_proj.weight", {4, 8}},
      {"model.layers.0.self_attn.v_proj.weight", {4, 8}},
      {"model.layers.0.self_attn.o_proj.weight", {8, 8}},
      {"model.layers.0.post_attention_layernorm.weight", {8}},
      {"model.layers.0.mlp.gate_proj.weight", {16, 8}},
      {"model.layers.0.mlp.up_proj.weight", {16, 8}},
      {"model.layers.0.mlp.down_proj.weight", {8, 16}},
      {"model.norm.weight", {8}},
  };
  std::erase_if(ts, [&](const auto& t) { return t.first == drop; });
  write_safetensors(dir + "/model.safetensors", ts);
  return dir;
}

// A GGUF written from a synthetic model, optionally edited on the way.
std::string write_gguf(const MemoryWeightSource& src, const std::function<void(GgufWriter&)>& edit_metadata,
                       const std::string& replace_tensor = "", DType replace_type = DType::kF32) {
  GgufWriter w;
  for (const auto& [k, v] : src.metadata().entries()) w.metadata().set(k, v);
  if (edit_metadata) edit_metadata(w);
  static std::vector<std::unique_ptr<Storage>> keep;
  for (const NamedTensor& t : src.tensors()) {
    if (t.name != replace_tensor) {
      w.add_tensor(t.name, t.view);
      continue;
    }
    TensorView v = t.view;
    v.type = replace_type;
    v.nbytes = *dtype_row_bytes(replace_type, v.cols()) * static_cast<size_t>(v.rows());
    keep.push_back(std::make_unique<Storage>(v.nbytes));
    std::memset(keep.back()->data(), 0, v.nbytes);
    v.data = keep.back()->data();
    w.add_tensor(t.name, v);
  }
  const std::string path = test::temp_dir() + "/model.gguf";
  Status st = w.write(path);
  EXPECT_TRUE(st.ok()) << st.message();
  return path;
}

std::unique_ptr<MemoryWeightSource> tiny_llama(int32_t n_embd = 64) {
  SynthOptions o;
  o.config = *find_synth_preset("llama-tiny");
  o.config.n_embd = n_embd;
  o.config.n_ff = n_embd;
  auto r = synth_model(o);
  EXPECT_TRUE(r.ok()) << r.status().message();
  return std::move(r).value();
}

TEST(BadInputArchitecture, UnknownGgufArchitecture) {
  auto src = tiny_llama();
  const std::string path = write_gguf(*src, [](GgufWriter& w) {
    w.metadata().set("general.architecture", MetaValue::from_string("falcon"));
  });
  expect_error(load_model(path), {path, "falcon"});
}

TEST(BadInputArchitecture, UnknownConfigJsonArchitecture) {
  const std::string dir = write_hf_llama("", {{"architectures", {"MistralForCausalLM"}}});
  expect_error(load_model(dir), {dir + "/config.json",
                                 "unsupported architecture 'MistralForCausalLM' in config.json (supported: "
                                 "GPT2LMHeadModel, LlamaForCausalLM)"});
}

TEST(BadInputTokenizer, Llama2cWithoutTokenizerBin) {
  LLMOPT_REQUIRE_DATA("models/stories260K/stories260K.bin");
  const std::string path = test::temp_dir() + "/stories260K.bin";
  test::write_file(path, test::read_file(test::data_path("models/stories260K/stories260K.bin")));
  expect_error(load_model(path),
               {path + ": no tokenizer found: pass --tokenizer PATH (llama2.c tokenizer.bin)"});
  LoadOptions no_tok;
  no_tok.require_tokenizer = false;
  auto m = load_model(path, no_tok);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_FALSE((*m)->has_tokenizer());
  // tokenizer.bin next to the checkpoint is found on its own.
  LLMOPT_REQUIRE_DATA("tokenizers/tok512/tok512.bin");
  test::write_file(path.substr(0, path.rfind('/')) + "/tokenizer.bin",
                   test::read_file(test::data_path("tokenizers/tok512/tok512.bin")));
  auto with_tok = load_model(path);
  ASSERT_TRUE(with_tok.ok()) << with_tok.status().message();
  EXPECT_TRUE((*with_tok)->has_tokenizer());
}

TEST(BadInputTokenizer, GgufWithoutTokenizerKeys) {
  auto src = tiny_llama();
  const std::string path = write_gguf(*src, [](GgufWriter& w) {
    std::vector<std::string> keys;
    for (const auto& [k, v] : w.metadata().entries()) {
      if (k.rfind("tokenizer.", 0) == 0) keys.push_back(k);
    }
    for (const auto& k : keys) w.metadata().erase(k);
  });
  expect_error(load_model(path), {path + ": model has no tokenizer"});
  LoadOptions no_tok;
  no_tok.require_tokenizer = false;
  auto m = load_model(path, no_tok);
  ASSERT_TRUE(m.ok()) << m.status().message();
  EXPECT_FALSE((*m)->has_tokenizer());
  // An explicit tokenizer file fills the gap.
  LLMOPT_REQUIRE_DATA("tokenizers/tok512/tok512.bin");
  LoadOptions with_tok;
  with_tok.tokenizer_path = test::data_path("tokenizers/tok512/tok512.bin");
  auto m2 = load_model(path, with_tok);
  ASSERT_TRUE(m2.ok()) << m2.status().message();
  EXPECT_EQ((*m2)->tokenizer().n_vocab(), 512);
}

TEST(BadInputTokenizer, HfDirectoryWithoutTokenizerFiles) {
  const std::string dir = write_hf_llama();
  expect_error(load_model(dir), {dir, "no tokenizer found"});
}

TEST(BadInputTokenizer, MalformedTokenizerMetadata) {
  Metadata md;
  md.set("tokenizer.ggml.model", MetaValue::from_string("llama"));
  md.set("tokenizer.ggml.tokens", MetaValue::from_strings({"<unk>", "<s>", "</s>"}));
  md.set("tokenizer.ggml.scores", MetaValue::from_f32s({0.0f, 0.0f}));
  expect_error(tokenizer_spec_from_metadata(md), {"tokenizer.ggml.scores", "3"});
  md.erase("tokenizer.ggml.scores");
  md.set("tokenizer.ggml.bos_token_id", MetaValue::from_u32(7));
  expect_error(tokenizer_spec_from_metadata(md), {"tokenizer.ggml.bos_token_id"});
  md.set("tokenizer.ggml.model", MetaValue::from_string("t5"));
  expect_error(tokenizer_spec_from_metadata(md), {"unsupported tokenizer model 't5'"});
}

TEST(BadInputTensors, UncomputableTensorType) {
  auto src = tiny_llama(256);  // q2_K needs rows that are a multiple of 256
  const std::string path = write_gguf(*src, nullptr, "blk.0.attn_q.weight", DType::kQ2_K);
  expect_error(load_model(path), {path, "blk.0.attn_q.weight", "q2_K"});
}

TEST(BadInputTensors, SafetensorsMissingRequiredTensor) {
  const std::string dir = write_hf_llama("model.norm.weight");
  expect_error(open_model_source(dir, {"", false}),
               {dir + "/model.safetensors: missing tensor 'model.norm.weight'"});
  const std::string dir2 = write_hf_llama("model.layers.0.self_attn.k_proj.weight");
  expect_error(load_model(dir2), {"model.safetensors", "model.layers.0.self_attn.k_proj.weight"});
}

TEST(BadInputTensors, SafetensorsWithWrongShape) {
  const std::string dir = write_hf_llama("", {{"num_key_value_heads", 2}});  // k_proj has 4 rows, not 8
  auto r = load_model(dir, {"", false});
  expect_error(r, {dir, "blk.0.attn_k.weight"});
}

TEST(BadInputConfig, MalformedConfigJson) {
  const std::string dir = write_hf_llama();
  test::write_file(dir + "/config.json", "{ not json");
  expect_error(load_model(dir), {dir + "/config.json", "JSON"});
  test::write_file(dir + "/config.json", R"({"architectures": ["LlamaForCausalLM"], "hidden_size": -8})");
  expect_error(load_model(dir), {dir + "/config.json", "hidden_size"});
  test::write_file(dir + "/config.json",
                   R"({"architectures": ["LlamaForCausalLM"], "hidden_size": 8, "intermediate_size": 16,
                       "num_hidden_layers": 1, "num_attention_heads": 3})");
  expect_error(load_model(dir), {dir + "/config.json", "num_attention_heads"});
  test::write_file(dir + "/config.json", R"({"architectures": "LlamaForCausalLM"})");
  expect_error(load_model(dir), {dir + "/config.json", "architectures"});
  const std::string scaled = write_hf_llama("", {{"rope_scaling", {{"type", "linear"}, {"factor", 2.0}}}});
  expect_error(load_model(scaled), {scaled + "/config.json", "rope_scaling"});
}

TEST(BadInputFiles, UnrecognizedOrMissing) {
  const std::string dir = test::temp_dir();
  test::write_file(dir + "/junk.bin", std::string(1000, 'x'));
  expect_error(
      load_model(dir + "/junk.bin"),
      {dir + "/junk.bin: unrecognized model format (not GGUF, not a Hugging Face directory, not a llama2.c "
             "checkpoint)"});
  expect_error(load_model(dir + "/missing.gguf"), {dir + "/missing.gguf"});
  expect_error(load_model(dir), {dir, "config.json"});
  test::write_file(dir + "/trunc.gguf", std::string("GGUF\x03\x00\x00\x00", 8));
  expect_error(load_model(dir + "/trunc.gguf"), {dir + "/trunc.gguf"});
  test::write_file(dir + "/config.json", "{}");
  expect_error(load_model(dir), {dir + "/config.json", "architectures"});
}

}  // namespace
}  // namespace llmopt
