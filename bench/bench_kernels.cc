// Kernel benchmarks: matmul throughput as GB/s of weight bytes streamed, per weight type and per
// ISA the CPU supports (ref, avx2, avx512), for one activation row (decode) and batches of 8-64 rows
// (batched decode, prefill), as GB/s of weights and GMAC/s per core.
//   cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release -DLLMOPT_BENCH=ON -DLLMOPT_TESTS=OFF
//   cmake --build build-bench --target bench_kernels && build-bench/bench/bench_kernels
// The weight matrix (4096 x 4096 by default) is far larger than the caches, so m = 1 measures
// how close a kernel gets to the memory bandwidth.
#include <benchmark/benchmark.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "kernels/kernels.h"
#include "kernels/repack.h"
#include "kernels/rotate.h"

namespace llmopt::kernels {
namespace {

// The weight matrix: 4096 x 4096 unless BENCH_N_OUT / BENCH_K say otherwise (e.g. GPT-2's ffn_down,
// BENCH_N_OUT=768 BENCH_K=3072).
int64_t env_or(const char* name, int64_t dflt) {
  const char* v = std::getenv(name);
  return v != nullptr && std::atoll(v) > 0 ? std::atoll(v) : dflt;
}
const int64_t kNOut = env_or("BENCH_N_OUT", 4096);
const int64_t kK = env_or("BENCH_K", 4096);

// Random weights: values through quantize_row for float types; random payload with small fp16
// scales (and mins) for block types.
std::vector<uint8_t> make_weights(DType t) {
  if (is_r16(t)) {  // the file-type matrix, regrouped as the loader does (kernels/repack.h)
    std::vector<uint8_t> w = make_weights(plain_type_of(t));
    repack_r16_as(t, w.data(), kNOut, kK);
    return w;
  }
  const size_t row_bytes = dtype_row_bytes(t, kK).value();
  std::vector<uint8_t> w(row_bytes * kNOut);
  std::mt19937 rng(1);
  if (!dtype_info(t).quantized) {
    std::uniform_real_distribution<float> val(-1.0f, 1.0f);
    std::vector<float> row(kK);
    for (int64_t r = 0; r < kNOut; ++r) {
      for (auto& v : row) v = val(rng);
      quantize_row(t, row.data(), w.data() + r * row_bytes, kK);
    }
    return w;
  }
  for (auto& b : w) b = static_cast<uint8_t>(rng());
  const size_t tsz = dtype_info(t).type_size;
  // Offset of d; Q4_1 / Q4_K / Q5_K also have m / dmin right after it. Q6_K keeps d at the end.
  const size_t d_off = t == DType::kQ6_K ? tsz - 2 : 0;
  const bool has_min = t == DType::kQ4_1 || t == DType::kQ4_K || t == DType::kQ5_K;
  for (size_t off = 0; off < w.size(); off += tsz) {
    const uint16_t h = fp32_to_fp16(0.01f);
    std::memcpy(&w[off + d_off], &h, 2);
    if (has_min) std::memcpy(&w[off + 2], &h, 2);
    // Q8_0 quantizers write codes in [-127, 127]; a -128 sends the batched kernel down its slower path
    // for such blocks (tiles_blockdot_x86.h), which real files never take.
    if (t == DType::kQ8_0) {
      for (size_t j = 2; j < tsz; ++j) w[off + j] = w[off + j] == 0x80 ? 0x81 : w[off + j];
    }
  }
  return w;
}

double process_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

void bm_matmul(benchmark::State& state, DType t, Isa isa, int64_t m, int n_threads) {
  set_isa(isa);
  if (active_isa() != isa) {
    state.SkipWithError("ISA not supported");
    return;
  }
  static std::vector<uint8_t> wbytes;
  static DType wtype = DType::kI8;
  if (wtype != t || wbytes.empty()) {
    wbytes = make_weights(t);
    wtype = t;
  }
  TensorView w{t, {kNOut, kK}, wbytes.data(), wbytes.size()};
  std::vector<float> x(static_cast<size_t>(m * kK)), y(static_cast<size_t>(m * kNOut));
  std::mt19937 rng(2);
  std::uniform_real_distribution<float> val(-1.0f, 1.0f);
  for (auto& v : x) v = val(rng);
  ThreadPool pool(n_threads);
  const double cpu0 = process_cpu_seconds();
  for (auto _ : state) {
    matmul(w, x.data(), m, y.data(), pool);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  const double cpu = process_cpu_seconds() - cpu0;
  const double bytes = static_cast<double>(wbytes.size()) * static_cast<double>(state.iterations());
  state.counters["GB/s"] =
      benchmark::Counter(bytes, benchmark::Counter::kIsRate, benchmark::Counter::OneK::kIs1000);
  // NOTE: bytes per second of CPU time summed over all threads: the per-core rate, which stays
  // meaningful on a loaded machine where wall-clock rates are not.
  state.counters["GB/s/core"] = cpu > 0 ? bytes / cpu / 1e9 : 0.0;
  // Multiply-adds per second of CPU time: the compute rate that bounds batched decode and prefill.
  const double macs = static_cast<double>(m) * kNOut * kK * static_cast<double>(state.iterations());
  state.counters["GMAC/s/core"] = cpu > 0 ? macs / cpu / 1e9 : 0.0;
  state.SetLabel(std::string(isa_name(isa)));
}

// The W8A8 input rotation (kernels/rotate.h) of one row of n = p * m, and for GPT-2's ffn_down shape
// (768 x 3072, m = 3) the i8_ch product with and without it: what `quantize --rotate` costs at run time.
void bm_rotate(benchmark::State& state, int64_t n, int64_t m) {
  std::vector<float> q(static_cast<size_t>(m * m), 0.0f), x(static_cast<size_t>(n), 0.5f), y(x.size());
  for (int64_t i = 0; i < m; ++i) q[i * m + i] = 1.0f;  // any orthogonal Q costs the same
  for (auto _ : state) {
    rotate_rows(q.data(), m, x.data(), 1, n, y.data());
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["ns/element"] = benchmark::Counter(static_cast<double>(n), benchmark::Counter::kIsIterationInvariantRate |
                                                                                 benchmark::Counter::kInvert);
}

void bm_i8ch(benchmark::State& state, bool rotated, int64_t rows) {
  const int64_t n_out = 768, k = 3072, m = 3;
  std::vector<int8_t> codes(static_cast<size_t>(n_out * k), 3);
  std::vector<float> scale(static_cast<size_t>(n_out), 0.01f), q(static_cast<size_t>(m * m), 0.0f);
  for (int64_t i = 0; i < m; ++i) q[i * m + i] = 1.0f;
  TensorView w;
  w.type = DType::kI8Ch;
  w.shape = {n_out, k};
  w.data = reinterpret_cast<const uint8_t*>(codes.data());
  w.nbytes = codes.size();
  w.row_scale = scale.data();
  if (rotated) {
    w.rot = q.data();
    w.rot_m = m;
  }
  std::vector<float> x(static_cast<size_t>(rows * k), 0.25f), y(static_cast<size_t>(rows * n_out));
  ThreadPool pool(1);
  for (auto _ : state) {
    matmul(w, x.data(), rows, y.data(), pool);
    benchmark::DoNotOptimize(y.data());
  }
}

// Flash-style attention over a 256-position f16 (or f32) KV head, head size 64, in chunks of
// kAttnChunk keys: one decode token with `group` query heads per KV head (GQA), or a prefill tile of 4
// tokens. Reported per key position.
void bm_attn(benchmark::State& state, int32_t group, int32_t n_tok, bool f16, Isa isa) {
  set_isa(isa);
  if (active_isa() != isa) {
    state.SkipWithError("ISA not supported");
    return;
  }
  const int64_t hd = 64, n_ctx = 256;
  const int32_t rows = group * n_tok;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> val(-1.0f, 1.0f);
  std::vector<float> q(static_cast<size_t>(rows * hd)), o(q.size()), kf(static_cast<size_t>(n_ctx * hd)), vf(kf.size());
  for (auto* vec : {&q, &kf, &vf}) {
    for (auto& x : *vec) x = val(rng);
  }
  std::vector<uint16_t> kh(kf.size()), vh(vf.size());
  for (size_t i = 0; i < kf.size(); ++i) kh[i] = fp32_to_fp16(kf[i]), vh[i] = fp32_to_fp16(vf[i]);
  std::vector<float> m(static_cast<size_t>(rows)), l(static_cast<size_t>(rows));
  std::vector<int32_t> n_vis(static_cast<size_t>(n_tok));
  for (auto _ : state) {
    AttnQueries a;
    a.q = q.data();
    a.q_stride = group * hd;
    a.o = o.data();
    a.o_stride = group * hd;
    a.n_tok = n_tok;
    a.group = group;
    a.n_vis = n_vis.data();
    a.m = m.data();
    a.l = l.data();
    std::fill(m.begin(), m.end(), -INFINITY);
    std::fill(l.begin(), l.end(), 0.0f);
    std::fill(o.begin(), o.end(), 0.0f);
    for (int64_t c = 0; c < n_ctx; c += kAttnChunk) {
      for (int32_t t = 0; t < n_tok; ++t) n_vis[t] = static_cast<int32_t>(std::min<int64_t>(kAttnChunk, n_ctx - n_tok + 1 + t - c));
      const void* k = f16 ? static_cast<const void*>(kh.data() + c * hd) : kf.data() + c * hd;
      const void* v = f16 ? static_cast<const void*>(vh.data() + c * hd) : vf.data() + c * hd;
      attn_block(a, hd, 0.125f, k, v, f16, hd, kAttnChunk);
    }
    benchmark::DoNotOptimize(o.data());
  }
  state.counters["ns/position"] = benchmark::Counter(static_cast<double>(n_ctx),
                                                     benchmark::Counter::kIsIterationInvariantRate |
                                                         benchmark::Counter::kInvert);
  state.SetLabel(std::string(isa_name(isa)));
}

void register_all() {
  for (Isa isa : {Isa::kAvx2, Isa::kAmx}) {
    if (!isa_supported(isa)) continue;
    for (auto [group, n_tok] : {std::pair<int32_t, int32_t>{1, 1}, {3, 1}, {4, 1}, {1, 4}, {3, 4}}) {
      for (bool f16 : {true, false}) {
        benchmark::RegisterBenchmark(("attn/hd:64/ctx:256/group:" + std::to_string(group) + "/tokens:" +
                                      std::to_string(n_tok) + (f16 ? "/f16/" : "/f32/") + isa_name(isa))
                                         .c_str(),
                                     bm_attn, group, n_tok, f16, isa)
            ->Unit(benchmark::kMicrosecond);
      }
    }
  }
  for (auto [n, m] : {std::pair<int64_t, int64_t>{768, 3}, {3072, 3}, {2048, 1}, {11008, 43}}) {
    benchmark::RegisterBenchmark(("rotate/n:" + std::to_string(n) + "/m:" + std::to_string(m)).c_str(), bm_rotate, n, m)
        ->Unit(benchmark::kMicrosecond);
  }
  for (int64_t rows : {1, 16}) {
    for (bool rot : {false, true}) {
      benchmark::RegisterBenchmark(("i8ch/768x3072/rows:" + std::to_string(rows) + (rot ? "/rotated" : "/plain")).c_str(),
                                   bm_i8ch, rot, rows)
          ->Unit(benchmark::kMicrosecond);
    }
  }
  for (DType t : {DType::kF32, DType::kF32R16, DType::kF16, DType::kF16R16, DType::kBF16, DType::kQ8_0, DType::kQ8_0R16,
                  DType::kQ4_0, DType::kQ4_0R16,
                  DType::kQ4_1, DType::kQ4_K, DType::kQ4_KR16, DType::kQ5_K, DType::kQ5_KR16, DType::kQ6_K, DType::kQ6_KR16,
                  DType::kQ6_KR16X3}) {
    for (Isa isa : {Isa::kRef, Isa::kAvx2, Isa::kAvx512, Isa::kAmx}) {
      if (!isa_supported(isa)) continue;
      for (int64_t m : {1, 2, 3, 5, 6, 7, 8, 9, 16, 64, 256}) {
        for (int n_threads : {1, 2}) {
          const std::string name = std::string("matmul/") + dtype_name(t) + "/" + isa_name(isa) +
                                   "/m:" + std::to_string(m) + "/threads:" + std::to_string(n_threads);
          benchmark::RegisterBenchmark(name.c_str(), bm_matmul, t, isa, m, n_threads)
              ->Unit(benchmark::kMicrosecond)
              ->UseRealTime();
        }
      }
    }
  }
}

}  // namespace
}  // namespace llmopt::kernels

int main(int argc, char** argv) {
  llmopt::kernels::register_all();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
