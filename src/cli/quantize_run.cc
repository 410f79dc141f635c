// Shared pieces of `llmopt quantize --method` (quantize_run.h): the linear groups of a layer, the
// calibration pass, and MethodRun's write-back helpers.
#include "cli/quantize_run.h"

#include <algorithm>
#include <cstring>
#include <numeric>
#include <random>

#include "core/dtype.h"
#include "kernels/kernels.h"
#include "model/kv_store.h"

namespace llmopt::cli {

std::vector<LinearGroup> layer_groups(Arch arch, int32_t il) {
  const std::string b = "blk." + std::to_string(il) + ".";
  if (arch == Arch::kGpt2) {
    return {{{b + "attn_qkv.weight"}, b + "attn_norm.weight", b + "attn_norm.bias", ""},
            {{b + "attn_output.weight"}, "", "", ""},
            {{b + "ffn_up.weight"}, b + "ffn_norm.weight", b + "ffn_norm.bias", ""},
            {{b + "ffn_down.weight"}, "", "", ""}};
  }
  return {{{b + "attn_q.weight", b + "attn_k.weight", b + "attn_v.weight"}, b + "attn_norm.weight", "", ""},
          {{b + "attn_output.weight"}, "", "", ""},
          {{b + "ffn_gate.weight", b + "ffn_up.weight"}, b + "ffn_norm.weight", "", ""},
          {{b + "ffn_down.weight"}, "", "", b + "ffn_up.weight"}};
}

std::shared_ptr<MemoryWeightSource> f32_copy_of(std::shared_ptr<const WeightSource> src,
                                                std::map<std::string, float*>* f32) {
  auto copy = std::make_shared<MemoryWeightSource>(src->origin());
  copy->mutable_metadata() = src->metadata();
  for (const NamedTensor& t : src->tensors()) {
    if (!is_float_type(t.view.type)) {
      copy->add_tensor(t.name, t.view);
      continue;
    }
    const int64_t n = t.view.numel();
    auto* p = reinterpret_cast<float*>(
        copy->add_owned_tensor(t.name, DType::kF32, t.view.shape, static_cast<size_t>(n) * sizeof(float)));
    kernels::dequantize_row(t.view.type, t.view.data, p, n);
    if (f32 != nullptr) (*f32)[t.name] = p;
  }
  copy->keep_alive(src);
  return copy;
}

void run_calibration(const Model& m, const std::vector<std::vector<int32_t>>& windows, LinearObserver* obs,
                     ThreadPool& pool, bool all_logits) {
  const int32_t bs = 16;
  const int32_t len = static_cast<int32_t>(windows[0].size());
  const int32_t n_blocks = (len + bs - 1) / bs;
  KvStore kv = KvStore::for_model(m.config(), n_blocks, bs);
  std::vector<int32_t> table(static_cast<size_t>(n_blocks));
  std::iota(table.begin(), table.end(), 0);
  ForwardOutput out;
  for (const auto& w : windows) {
    SeqInput in;
    in.tokens = w;
    in.pos0 = 0;
    in.block_table = table;
    in.logits = all_logits ? LogitsMode::kAll : LogitsMode::kNone;
    m.forward(std::span<const SeqInput>(&in, 1), kv, out, pool, obs);
  }
}

std::vector<float> subsample_rows(const std::vector<float>& x, int64_t cols, int64_t max_rows) {
  const int64_t n = static_cast<int64_t>(x.size()) / cols;
  if (n <= max_rows) return x;
  // A uniform sample without replacement (fixed seed), kept in the rows' order. An even stride would
  // alias with the windows' length: with 512 windows of 128 tokens, every 64th row is only positions 0
  // and 64, and position 0 (the BOS token, whose activations are unlike the others) half the sample.
  std::vector<int64_t> idx(static_cast<size_t>(n));
  std::iota(idx.begin(), idx.end(), int64_t{0});
  std::mt19937_64 rng(0x4157510ULL);
  for (int64_t i = 0; i < max_rows; ++i) {
    std::uniform_int_distribution<int64_t> pick(i, n - 1);
    std::swap(idx[static_cast<size_t>(i)], idx[static_cast<size_t>(pick(rng))]);
  }
  std::sort(idx.begin(), idx.begin() + max_rows);
  std::vector<float> out(static_cast<size_t>(max_rows * cols));
  for (int64_t i = 0; i < max_rows; ++i) {
    std::memcpy(out.data() + i * cols, x.data() + idx[static_cast<size_t>(i)] * cols,
                static_cast<size_t>(cols) * sizeof(float));
  }
  return out;
}

void MethodRun::to_f16_in_place(const std::string& name) {
  const TensorView* v = view_of(name);
  float* p = f32.at(name);
  for (int64_t i = 0; i < v->numel(); ++i) p[i] = fp16_to_fp32(fp32_to_fp16(p[i]));
  as_f16.insert(name);
}

void MethodRun::store(const std::string& name, const quant::GridTensor& t) {
  std::vector<uint8_t> blocks = a.compact ? quant::pack_q4_1_g128(t) : t.pack();
  kernels::dequantize_row(qtype, blocks.data(), f32.at(name), t.rows * t.cols);
  packed[name] = std::move(blocks);
  if (a.tune_steps > 0) grids[name] = t;
}

}  // namespace llmopt::cli
