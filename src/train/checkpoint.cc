// Checkpoint files (layout in checkpoint.h).
#include "train/checkpoint.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <memory>

namespace llmopt::train {
namespace {

constexpr char kMagic[8] = {'L', 'L', 'M', 'T', 'R', 'A', 'I', 'N'};
constexpr uint32_t kVersion = 1;

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};
using File = std::unique_ptr<std::FILE, FileCloser>;

struct Shape {
  int32_t v[8];
  float eps, theta;
};

Shape shape_of(const ModelConfig& c) {
  return {{static_cast<int32_t>(c.arch), c.n_vocab, c.n_ctx_train, c.n_embd, c.n_layer, c.n_head, c.n_head_kv,
           c.n_ff},
          c.norm_eps,
          c.rope_theta};
}

}  // namespace

Status save_checkpoint(const std::string& path, const ParamLayout& layout, const TrainState& st) {
  const std::string tmp = path + ".tmp";
  {
    File f(std::fopen(tmp.c_str(), "wb"));
    if (!f) return error(tmp + ": " + std::strerror(errno));
    const Shape sh = shape_of(layout.cfg);
    const uint64_t n = layout.total;
    bool ok = std::fwrite(kMagic, 1, 8, f.get()) == 8;
    auto put = [&](const void* p, size_t bytes) {
      if (ok && bytes > 0) ok = std::fwrite(p, 1, bytes, f.get()) == bytes;
    };
    put(&kVersion, 4);
    put(sh.v, sizeof(sh.v));
    put(&sh.eps, 4);
    put(&sh.theta, 4);
    put(&st.step, 8);
    put(&st.rng_state, 8);
    put(&st.batch, 8);
    put(&st.opt.t, 8);
    put(&n, 8);
    put(st.params.data(), n * 4);
    put(st.opt.m.data(), n * 4);
    put(st.opt.v.data(), n * 4);
    if (!ok || std::fflush(f.get()) != 0) return error(tmp + ": write failed: " + std::strerror(errno));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    return error(path + ": cannot rename from " + tmp + ": " + std::strerror(errno));
  }
  return ok_status();
}

Result<TrainState> load_checkpoint(const std::string& path, const ParamLayout& layout) {
  File f(std::fopen(path.c_str(), "rb"));
  if (!f) return error(path + ": " + std::strerror(errno));
  bool ok = true;
  auto get = [&](void* p, size_t bytes) {
    if (ok && bytes > 0) ok = std::fread(p, 1, bytes, f.get()) == bytes;
  };
  char magic[8];
  uint32_t version = 0;
  get(magic, 8);
  if (!ok || std::memcmp(magic, kMagic, 8) != 0) return error(path + ": not an llmopt training checkpoint");
  get(&version, 4);
  if (!ok || version != kVersion)
    return error(path + ": unsupported checkpoint version " + std::to_string(version));
  Shape sh{};
  get(sh.v, sizeof(sh.v));
  get(&sh.eps, 4);
  get(&sh.theta, 4);
  TrainState st;
  uint64_t n = 0;
  get(&st.step, 8);
  get(&st.rng_state, 8);
  get(&st.batch, 8);
  get(&st.opt.t, 8);
  get(&n, 8);
  if (!ok) return error(path + ": truncated checkpoint header");
  const Shape want = shape_of(layout.cfg);
  static const char* kNames[8] = {"arch", "vocab", "ctx", "dim", "layers", "heads", "kv-heads", "ffn"};
  for (int i = 0; i < 8; ++i) {
    if (sh.v[i] != want.v[i]) {
      return error(path + ": checkpoint is for another model shape (" + kNames[i] + " " +
                   std::to_string(sh.v[i]) + ", this run has " + std::to_string(want.v[i]) + ")");
    }
  }
  if (sh.eps != want.eps || sh.theta != want.theta || n != layout.total) {
    return error(path +
                 ": checkpoint is for another model shape (norm eps, rope theta or parameter count differ)");
  }
  if (st.step < 0 || st.opt.t < 0) return error(path + ": corrupt checkpoint (negative step)");
  st.params.resize(n);
  st.opt.m.resize(n);
  st.opt.v.resize(n);
  get(st.params.data(), n * 4);
  get(st.opt.m.data(), n * 4);
  get(st.opt.v.data(), n * 4);
  if (!ok) return error(path + ": truncated checkpoint (expected " + std::to_string(n) + " parameters)");
  char extra;
  if (std::fread(&extra, 1, 1, f.get()) != 0)
    return error(path + ": trailing bytes after the checkpoint data");
  return st;
}

}  // namespace llmopt::train
