// Named model shapes and random-weight models built from them: canonical tensors (llama.cpp names,
// f32), GGUF metadata and a tokenizer (the given one, or a synthetic byte-level vocabulary).
// Values are N(0, 0.02) from a counter-based generator, so a seed gives the same model everywhere.
#include "model/synth.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>
#include <thread>

#include "model/loader.h"

namespace llmopt {
namespace {

ModelConfig gpt2_shape(const std::string& name, int32_t n_embd, int32_t n_layer, int32_t n_head,
                       int32_t n_ctx, int32_t n_vocab) {
  ModelConfig c;
  c.arch = Arch::kGpt2;
  c.name = name;
  c.n_vocab = n_vocab;
  c.n_ctx_train = n_ctx;
  c.n_embd = n_embd;
  c.n_layer = n_layer;
  c.n_head = n_head;
  c.n_head_kv = n_head;
  c.n_ff = 4 * n_embd;
  c.head_dim = n_embd / n_head;
  c.n_rot = 0;
  c.norm_eps = 1e-5f;
  c.tied_head = false;  // NOTE: untied by default, the shape the end-to-end benchmarks use.
  return c;
}

ModelConfig llama_shape(const std::string& name, int32_t n_embd, int32_t n_layer, int32_t n_head,
                        int32_t n_head_kv, int32_t n_ff, int32_t n_ctx, int32_t n_vocab) {
  ModelConfig c;
  c.arch = Arch::kLlama;
  c.name = name;
  c.n_vocab = n_vocab;
  c.n_ctx_train = n_ctx;
  c.n_embd = n_embd;
  c.n_layer = n_layer;
  c.n_head = n_head;
  c.n_head_kv = n_head_kv;
  c.n_ff = n_ff;
  c.head_dim = n_embd / n_head;
  c.n_rot = c.head_dim;
  c.norm_eps = 1e-5f;
  c.rope_theta = 10000.0f;
  c.rope_layout = kernels::RopeLayout::kAdjacent;
  c.tied_head = true;
  return c;
}

// splitmix64: a counter-based stream, so every tensor can be generated independently.
uint64_t mix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

uint64_t hash_name(const std::string& s, uint64_t seed) {
  uint64_t h = 0xcbf29ce484222325ull ^ seed;  // FNV-1a over the name, then mixed with the seed
  for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
  return mix64(h ^ mix64(seed));
}

// Fills out[begin..end) (begin even) of a tensor with N(0, stddev) by Box-Muller over the stream
// keyed by (seed, name); element i depends only on the key and i.
void fill_normal_range(float* out, int64_t begin, int64_t end, int64_t n, float stddev, uint64_t key) {
  // NOTE: float math (24-bit uniforms) is plenty for random test weights and twice as fast.
  constexpr float kTwoPi = 6.28318531f;
  for (int64_t i = begin; i < end; i += 2) {
    const uint64_t a = mix64(key + static_cast<uint64_t>(i));
    const uint64_t b = mix64(key + static_cast<uint64_t>(i) + 1);
    const float u1 = (static_cast<float>(a >> 40) + 1.0f) * 0x1.0p-24f;  // (0, 1]
    const float u2 = static_cast<float>(b >> 40) * 0x1.0p-24f;           // [0, 1)
    const float r = std::sqrt(-2.0f * std::log(u1)) * stddev;
    out[i] = r * std::cos(kTwoPi * u2);
    if (i + 1 < n) out[i + 1] = r * std::sin(kTwoPi * u2);
  }
}

void fill_normal(float* out, int64_t n, float stddev, uint64_t key) {
  constexpr int64_t kChunk = int64_t{1} << 20;  // even, so every chunk starts a Box-Muller pair
  const int64_t n_chunks = (n + kChunk - 1) / kChunk;
  const int n_threads =
      static_cast<int>(std::min<int64_t>(n_chunks, std::max(1u, std::thread::hardware_concurrency())));
  if (n_threads <= 1) {
    fill_normal_range(out, 0, n, n, stddev, key);
    return;
  }
  std::atomic<int64_t> next{0};
  auto work = [&] {
    for (int64_t ch = next++; ch < n_chunks; ch = next++) {
      fill_normal_range(out, ch * kChunk, std::min(n, (ch + 1) * kChunk), n, stddev, key);
    }
  };
  std::vector<std::thread> threads;
  for (int t = 1; t < n_threads; ++t) threads.emplace_back(work);
  work();
  for (auto& t : threads) t.join();
}

// GPT-2's byte-to-unicode table: printable bytes map to themselves, the rest to U+0100 onwards.
std::string byte_level_piece(int b) {
  const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
  uint32_t cp = static_cast<uint32_t>(b);
  if (!printable) {
    int k = 0;
    for (int x = 0; x < b; ++x) {
      const bool p = (x >= '!' && x <= '~') || (x >= 0xA1 && x <= 0xAC) || (x >= 0xAE && x <= 0xFF);
      if (!p) ++k;
    }
    cp = 256 + static_cast<uint32_t>(k);
  }
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

Status check_shape(const ModelConfig& c) {
  auto positive = [](int32_t v) { return v > 0; };
  if (!positive(c.n_vocab) || !positive(c.n_ctx_train) || !positive(c.n_embd) || !positive(c.n_layer) ||
      !positive(c.n_head) || !positive(c.n_head_kv) || !positive(c.n_ff)) {
    return error("synthetic model '" + c.name + "': every size must be positive");
  }
  if (c.n_embd % c.n_head != 0 || c.n_head % c.n_head_kv != 0) {
    return error("synthetic model '" + c.name + "': n_embd must divide by n_head and n_head by n_head_kv");
  }
  if (c.arch == Arch::kGpt2 && c.n_head_kv != c.n_head) {
    return error("synthetic model '" + c.name + "': GPT-2 has n_head_kv == n_head");
  }
  return ok_status();
}

}  // namespace

const std::vector<SynthPreset>& synth_presets() {
  static const std::vector<SynthPreset> presets = [] {
    std::vector<SynthPreset> p;
    auto add = [&](ModelConfig c) { p.push_back({c.name, c}); };
    add(gpt2_shape("gpt2-124M", 768, 12, 12, 1024, 50257));
    add(gpt2_shape("gpt2-355M", 1024, 24, 16, 1024, 50257));
    add(gpt2_shape("gpt2-tiny", 64, 2, 4, 128, 512));
    add(llama_shape("llama-110M", 768, 12, 12, 4, 2048, 2048, 32000));
    add(llama_shape("llama-1B", 2048, 16, 32, 8, 8192, 2048, 32000));
    add(llama_shape("llama-tiny", 64, 2, 4, 2, 160, 128, 512));
    return p;
  }();
  return presets;
}

std::optional<ModelConfig> find_synth_preset(const std::string& name) {
  for (const SynthPreset& p : synth_presets()) {
    if (p.name == name) return p.config;
  }
  return std::nullopt;
}

Result<std::unique_ptr<MemoryWeightSource>> synth_model(const SynthOptions& opts) {
  ModelConfig c = opts.config;
  TokenizerSpec spec;
  if (opts.tokenizer) {
    spec = *opts.tokenizer;
    if (spec.tokens.empty())
      return error("synthetic model '" + c.name + "': the given tokenizer has no tokens");
    c.n_vocab = static_cast<int32_t>(spec.tokens.size());
  } else {
    if (c.n_vocab < 257) {
      return error("synthetic model '" + c.name + "': n_vocab " + std::to_string(c.n_vocab) +
                   " is too small for a byte-level vocabulary (at least 257)");
    }
    // 256 byte tokens, filler up to n_vocab, and an end-of-text token last (also BOS).
    spec.model = "gpt2";
    spec.pre = "gpt-2";
    for (int b = 0; b < 256; ++b) spec.tokens.push_back(byte_level_piece(b));
    for (int32_t i = 256; i + 1 < c.n_vocab; ++i) spec.tokens.push_back("<|tok_" + std::to_string(i) + "|>");
    spec.tokens.push_back("<|endoftext|>");
    spec.token_types.assign(spec.tokens.size(), static_cast<int32_t>(TokenType::kNormal));
    spec.token_types.back() = static_cast<int32_t>(TokenType::kControl);
    spec.bos_id = spec.eos_id = c.n_vocab - 1;
    spec.add_bos = false;
    spec.add_space_prefix = false;
  }
  LLMOPT_RETURN_IF_ERROR(check_shape(c));
  c.head_dim = c.n_embd / c.n_head;
  if (c.arch == Arch::kLlama && c.n_rot == 0) c.n_rot = c.head_dim;

  auto src = std::make_unique<MemoryWeightSource>("synthetic:" + c.name);
  const uint64_t seed = opts.seed;
  auto matrix = [&](const std::string& name, int64_t rows, int64_t cols) {
    const size_t n = static_cast<size_t>(rows * cols);
    auto* p = reinterpret_cast<float*>(src->add_owned_tensor(name, DType::kF32, {rows, cols}, n * 4));
    fill_normal(p, static_cast<int64_t>(n), 0.02f, hash_name(name, seed));
  };
  auto vec = [&](const std::string& name, int64_t n, float value) {
    auto* p =
        reinterpret_cast<float*>(src->add_owned_tensor(name, DType::kF32, {n}, static_cast<size_t>(n) * 4));
    for (int64_t i = 0; i < n; ++i) p[i] = value;
  };
  auto blk = [](int il, const char* s) { return "blk." + std::to_string(il) + "." + s; };

  const int64_t d = c.n_embd, q = c.q_dim(), kv = static_cast<int64_t>(c.n_head_kv) * c.head_dim, ff = c.n_ff;
  matrix("token_embd.weight", c.n_vocab, d);
  const bool gpt2 = c.arch == Arch::kGpt2;
  if (gpt2) matrix("position_embd.weight", c.n_ctx_train, d);
  for (int il = 0; il < c.n_layer; ++il) {
    vec(blk(il, "attn_norm.weight"), d, 1.0f);
    if (gpt2) {
      vec(blk(il, "attn_norm.bias"), d, 0.0f);
      matrix(blk(il, "attn_qkv.weight"), q + 2 * kv, d);
      vec(blk(il, "attn_qkv.bias"), q + 2 * kv, 0.0f);
      matrix(blk(il, "attn_output.weight"), d, q);
      vec(blk(il, "attn_output.bias"), d, 0.0f);
      vec(blk(il, "ffn_norm.weight"), d, 1.0f);
      vec(blk(il, "ffn_norm.bias"), d, 0.0f);
      matrix(blk(il, "ffn_up.weight"), ff, d);
      vec(blk(il, "ffn_up.bias"), ff, 0.0f);
      matrix(blk(il, "ffn_down.weight"), d, ff);
      vec(blk(il, "ffn_down.bias"), d, 0.0f);
    } else {
      matrix(blk(il, "attn_q.weight"), q, d);
      matrix(blk(il, "attn_k.weight"), kv, d);
      matrix(blk(il, "attn_v.weight"), kv, d);
      matrix(blk(il, "attn_output.weight"), d, q);
      vec(blk(il, "ffn_norm.weight"), d, 1.0f);
      matrix(blk(il, "ffn_gate.weight"), ff, d);
      matrix(blk(il, "ffn_up.weight"), ff, d);
      matrix(blk(il, "ffn_down.weight"), d, ff);
    }
  }
  vec("output_norm.weight", d, 1.0f);
  if (gpt2) vec("output_norm.bias", d, 0.0f);
  if (!c.tied_head) matrix("output.weight", c.n_vocab, d);

  Metadata& md = src->mutable_metadata();
  md.set("general.architecture", MetaValue::from_string(arch_name(c.arch)));
  md.set("general.name", MetaValue::from_string(c.name));
  config_to_metadata(c, md);
  tokenizer_spec_to_metadata(spec, md);
  return src;
}

}  // namespace llmopt
