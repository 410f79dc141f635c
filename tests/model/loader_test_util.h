// Helpers shared by the loader, synth and convert tests: greedy decoding and all-position logits
// over Model::forward with a contiguous block table, and small file writers for bad-input cases.
#pragma once

#include <algorithm>
#include <cstdint>
#include <numeric>
#include <span>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include <cstring>

#include "core/thread_pool.h"
#include "formats/gguf.h"
#include "model/convert.h"
#include "kernels/repack.h"
#include "model/kv_store.h"
#include "model/loader.h"
#include "model/model.h"

namespace llmopt::test {

inline constexpr int32_t kTestBlockSize = 16;

inline KvStore kv_for(const Model& m, int64_t n_tokens) {
  const int32_t n_blocks = static_cast<int32_t>((n_tokens + kTestBlockSize - 1) / kTestBlockSize);
  // f32: these tests compare against f32 references (an f16 cache is tested on its own).
  return KvStore(m.config().n_layer, m.config().kv_dim(), std::max(n_blocks, 1), kTestBlockSize, DType::kF32);
}

inline std::vector<int32_t> contiguous_table(const KvStore& kv) {
  std::vector<int32_t> t(static_cast<size_t>(kv.n_blocks()));
  std::iota(t.begin(), t.end(), 0);
  return t;
}

inline int32_t argmax(const float* x, int64_t n) {
  return static_cast<int32_t>(std::max_element(x, x + n) - x);
}

// Greedy continuation: prompt (prefilled at once), then n_new tokens one at a time.
inline std::vector<int32_t> greedy(const Model& m, std::vector<int32_t> ids, int n_new, ThreadPool& pool) {
  KvStore kv = kv_for(m, static_cast<int64_t>(ids.size()) + n_new);
  const std::vector<int32_t> table = contiguous_table(kv);
  ForwardOutput out;
  size_t done = 0;
  for (int step = 0; step < n_new; ++step) {
    SeqInput in;
    in.tokens = std::span<const int32_t>(ids.data() + done, ids.size() - done);
    in.pos0 = static_cast<int32_t>(done);
    in.block_table = table;
    in.logits = LogitsMode::kLast;
    m.forward(std::span<const SeqInput>(&in, 1), kv, out, pool);
    done = ids.size();
    ids.push_back(argmax(out.logits.data(), m.config().n_vocab));
  }
  return ids;
}

// Logits at every position of `ids`, [ids.size()][n_vocab], from one prefill.
inline std::vector<float> all_logits(const Model& m, const std::vector<int32_t>& ids, ThreadPool& pool) {
  KvStore kv = kv_for(m, static_cast<int64_t>(ids.size()));
  const std::vector<int32_t> table = contiguous_table(kv);
  SeqInput in;
  in.tokens = ids;
  in.block_table = table;
  in.logits = LogitsMode::kAll;
  ForwardOutput out;
  m.forward(std::span<const SeqInput>(&in, 1), kv, out, pool);
  return out.logits;
}

// Writes the weights of `m` (loaded from the GGUF file at `path`, perhaps regrouped in memory) back as
// `outtype` to `out` and expects the file's tensors, type and bytes: what a load rearranged in memory
// must come back exactly.
inline void expect_writes_back_the_file(const Model& m, const std::string& path, DType outtype,
                                        const std::string& out) {
  ConvertOptions copts;
  copts.outtype = outtype;
  ASSERT_TRUE(write_gguf_model(m.source(), out, copts).ok());
  auto a = GgufFile::open(path);
  auto b = GgufFile::open(out);
  ASSERT_TRUE(a.ok() && b.ok());
  ASSERT_EQ((*a)->tensors().size(), (*b)->tensors().size());
  for (size_t i = 0; i < (*a)->tensors().size(); ++i) {
    const TensorView& x = (*a)->tensors()[i].view;
    const TensorView& y = (*b)->tensors()[i].view;
    ASSERT_EQ(x.type, y.type) << (*a)->tensors()[i].name;
    ASSERT_EQ(x.nbytes, y.nbytes) << (*a)->tensors()[i].name;
    ASSERT_EQ(std::memcmp(x.data, y.data, x.nbytes), 0) << (*a)->tensors()[i].name;
  }
}

// The GGUF file at `path` loaded as it is and regrouped at load (LoadOptions::repack); n_packed counts
// the tensors of the regrouped one that now have type preferred_r16_type(t). ok: both loaded.
struct PlainAndPacked {
  std::unique_ptr<Model> plain, packed;
  int n_packed = 0;
  bool ok = false;
};
inline PlainAndPacked load_plain_and_packed(const std::string& path, DType t) {
  PlainAndPacked out;
  LoadOptions ro;
  ro.repack = true;
  auto plain = load_model(path);
  auto packed = load_model(path, ro);
  if (!plain.ok() || !packed.ok()) return out;
  out.plain = std::move(plain).value();
  out.packed = std::move(packed).value();
  for (const auto& nt : out.packed->source().tensors()) out.n_packed += nt.view.type == kernels::preferred_r16_type(t);
  out.ok = true;
  return out;
}

}  // namespace llmopt::test
