// llama2.c legacy checkpoint reader: validates the 7 x int32 header, checks the file holds the
// implied fp32 weights and exposes them as views into the mapping under llama.cpp GGUF names.
//
// Layout (little-endian):
//   int32 dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len
//   fp32  token_embedding [vocab, dim]
//         rms_att  [L, dim]           wq [L, dim, dim]      wk [L, kv_dim, dim]
//         wv [L, kv_dim, dim]         wo [L, dim, dim]      rms_ffn [L, dim]
//         w1 [L, hidden, dim]         w2 [L, dim, hidden]   w3 [L, hidden, dim]
//         rms_final [dim]
//         freq_cis_real [seq_len, head_size / 2]   freq_cis_imag [seq_len, head_size / 2]
//         wcls [vocab, dim]           only when vocab_size < 0 (untied classifier)
// where kv_dim = dim * n_kv_heads / n_heads and head_size = dim / n_heads.
#include "formats/llama2c.h"

#include <cstring>
#include <vector>

#include "core/log.h"
#include "core/mmap_file.h"
#include "formats/read_util.h"

namespace llmopt {
namespace {

using formats_internal::checked_add;
using formats_internal::checked_mul;

constexpr size_t kHeaderBytes = 7 * sizeof(int32_t);
// Newer llama2.c exports (version 1/2) start with this magic instead of the legacy header.
constexpr uint32_t kVersionedMagic = 0x616b3432;  // "ak42"

struct Header {
  int32_t dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
};

// One weight block of the checkpoint: `count` tensors of [rows, cols] fp32 stored back to back.
struct Block {
  const char* name;  // GGUF name; "%d" is the layer index; nullptr for blocks that are skipped
  int64_t count, rows, cols;
  bool vector;  // a 1-D tensor [cols] (norm weights)
};

struct Plan {
  Header h{};
  std::vector<Block> blocks;
  uint64_t total_bytes = 0;  // header + every block
};

std::string l2c_num(int64_t v) { return std::to_string(v); }

Result<Plan> make_plan(const uint8_t* data, size_t size) {
  if (size < kHeaderBytes) {
    return error("file too small for a llama2.c header (" + l2c_num(static_cast<int64_t>(size)) +
                 " bytes, need 28)");
  }
  Plan p;
  std::memcpy(&p.h, data, kHeaderBytes);
  const Header& h = p.h;
  if (static_cast<uint32_t>(h.dim) == kVersionedMagic) {
    return error("this is a versioned llama2.c export (magic \"ak42\"); only the legacy format is supported");
  }
  const std::pair<const char*, int32_t> positive[] = {
      {"dim", h.dim},         {"hidden_dim", h.hidden_dim}, {"n_layers", h.n_layers},
      {"n_heads", h.n_heads}, {"n_kv_heads", h.n_kv_heads}, {"seq_len", h.seq_len}};
  for (const auto& [name, v] : positive) {
    if (v <= 0) return error(std::string("header ") + name + " is " + l2c_num(v) + " (must be positive)");
  }
  if (h.vocab_size == 0) return error("header vocab_size is 0");
  if (h.dim % h.n_heads != 0) {
    return error("header dim " + l2c_num(h.dim) + " is not divisible by n_heads " + l2c_num(h.n_heads));
  }
  if (h.n_heads % h.n_kv_heads != 0) {
    return error("header n_heads " + l2c_num(h.n_heads) + " is not divisible by n_kv_heads " + l2c_num(h.n_kv_heads));
  }
  const int64_t head_size = h.dim / h.n_heads;
  if (head_size % 2 != 0)
    return error("head size " + l2c_num(head_size) + " (dim / n_heads) is odd; RoPE needs it even");
  const int64_t vocab = h.vocab_size < 0 ? -static_cast<int64_t>(h.vocab_size) : h.vocab_size;
  const int64_t dim = h.dim, hidden = h.hidden_dim, n_layer = h.n_layers;
  const int64_t kv_dim = dim / h.n_heads * h.n_kv_heads;
  p.blocks = {
      {"token_embd.weight", 1, vocab, dim, false},
      {"blk.%d.attn_norm.weight", n_layer, 1, dim, true},
      {"blk.%d.attn_q.weight", n_layer, dim, dim, false},
      {"blk.%d.attn_k.weight", n_layer, kv_dim, dim, false},
      {"blk.%d.attn_v.weight", n_layer, kv_dim, dim, false},
      {"blk.%d.attn_output.weight", n_layer, dim, dim, false},
      {"blk.%d.ffn_norm.weight", n_layer, 1, dim, true},
      {"blk.%d.ffn_gate.weight", n_layer, hidden, dim, false},
      {"blk.%d.ffn_down.weight", n_layer, dim, hidden, false},
      {"blk.%d.ffn_up.weight", n_layer, hidden, dim, false},
      {"output_norm.weight", 1, 1, dim, true},
      {nullptr, 2, h.seq_len, head_size / 2, false},  // freq_cis_real, freq_cis_imag (unused)
  };
  if (h.vocab_size < 0) p.blocks.push_back({"output.weight", 1, vocab, dim, false});
  uint64_t total = kHeaderBytes;
  for (const auto& b : p.blocks) {
    uint64_t n = 0;
    if (!checked_mul(static_cast<uint64_t>(b.count), static_cast<uint64_t>(b.rows), &n) ||
        !checked_mul(n, static_cast<uint64_t>(b.cols), &n) || !checked_mul(n, sizeof(float), &n) ||
        !checked_add(total, n, &total)) {
      return error("header implies an impossibly large model (dim " + l2c_num(dim) + ", hidden_dim " +
                   l2c_num(hidden) + ", n_layers " + l2c_num(n_layer) + ", vocab " + l2c_num(vocab) + ")");
    }
  }
  p.total_bytes = total;
  return p;
}

void set_u32(Metadata& md, const std::string& key, int64_t v) {
  md.set(key, MetaValue::from_u32(static_cast<uint32_t>(v)));
}

}  // namespace

bool looks_like_llama2c(const uint8_t* data, size_t size) {
  auto plan = make_plan(data, size);
  return plan.ok() && plan->total_bytes == size;
}

Result<std::unique_ptr<WeightSource>> open_llama2c(const std::string& path) {
  LLMOPT_ASSIGN_OR_RETURN(std::shared_ptr<MappedFile> file, MappedFile::open(path));
  auto plan_or = make_plan(file->data(), file->size());
  if (!plan_or.ok()) return plan_or.status().with_context(path);
  const Plan& plan = *plan_or;
  const Header& h = plan.h;
  if (file->size() < plan.total_bytes) {
    return error(path + ": file is truncated: the header (dim " + l2c_num(h.dim) + ", n_layers " +
                 l2c_num(h.n_layers) + ", vocab_size " + l2c_num(h.vocab_size) + ") implies " +
                 l2c_num(static_cast<int64_t>(plan.total_bytes)) + " bytes but the file has " +
                 l2c_num(static_cast<int64_t>(file->size())));
  }
  if (file->size() > plan.total_bytes) {
    log_warn(path + ": ignoring " + l2c_num(static_cast<int64_t>(file->size() - plan.total_bytes)) +
             " bytes after the weights the header implies");
  }

  auto src = std::make_unique<MemoryWeightSource>(path);
  Metadata& md = src->mutable_metadata();
  const int64_t vocab = h.vocab_size < 0 ? -static_cast<int64_t>(h.vocab_size) : h.vocab_size;
  md.set("general.architecture", MetaValue::from_string("llama"));
  set_u32(md, "llama.context_length", h.seq_len);
  set_u32(md, "llama.embedding_length", h.dim);
  set_u32(md, "llama.feed_forward_length", h.hidden_dim);
  set_u32(md, "llama.block_count", h.n_layers);
  set_u32(md, "llama.attention.head_count", h.n_heads);
  set_u32(md, "llama.attention.head_count_kv", h.n_kv_heads);
  set_u32(md, "llama.rope.dimension_count", h.dim / h.n_heads);
  md.set("llama.attention.layer_norm_rms_epsilon", MetaValue::from_f32(1e-5f));
  md.set("llama.rope.freq_base", MetaValue::from_f32(10000.0f));
  set_u32(md, "llama.vocab_size", vocab);

  // Blocks are stored block-major (all layers of wq, then all of wk, ...); the source lists
  // tensors layer by layer, as GGUF files do.
  struct Placed {
    const Block* block;
    uint64_t offset;
  };
  std::vector<Placed> placed;
  uint64_t offset = kHeaderBytes;
  for (const auto& b : plan.blocks) {
    placed.push_back({&b, offset});
    offset += static_cast<uint64_t>(b.count * b.rows * b.cols) * sizeof(float);
  }
  auto add = [&](const Placed& pl, int64_t il) {
    const Block& b = *pl.block;
    const uint64_t bytes = static_cast<uint64_t>(b.rows * b.cols) * sizeof(float);
    TensorView v;
    v.type = DType::kF32;
    v.shape = b.vector ? std::vector<int64_t>{b.cols} : std::vector<int64_t>{b.rows, b.cols};
    v.data = file->data() + pl.offset + static_cast<uint64_t>(il) * bytes;
    v.nbytes = static_cast<size_t>(bytes);
    std::string name = b.name;
    const size_t at = name.find("%d");
    if (at != std::string::npos) name.replace(at, 2, std::to_string(il));
    src->add_tensor(std::move(name), std::move(v));
  };
  for (const auto& pl : placed) {
    if (pl.block->name != nullptr && std::strcmp(pl.block->name, "token_embd.weight") == 0) add(pl, 0);
  }
  for (int64_t il = 0; il < h.n_layers; ++il) {
    for (const auto& pl : placed) {
      if (pl.block->name != nullptr && std::strstr(pl.block->name, "%d") != nullptr) add(pl, il);
    }
  }
  for (const auto& pl : placed) {
    if (pl.block->name != nullptr && std::strstr(pl.block->name, "%d") == nullptr &&
        std::strcmp(pl.block->name, "token_embd.weight") != 0) {
      add(pl, 0);
    }
  }
  src->keep_alive(file);
  return std::unique_ptr<WeightSource>(std::move(src));
}

}  // namespace llmopt
