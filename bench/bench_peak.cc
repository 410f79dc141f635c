// The machine's compute ceilings for the kernels' inner operations on AVX2 (one core): each benchmark
// runs one instruction sequence in 8 independent chains, in inline assembly so that the compiler
// neither hoists nor fuses it, and reports multiply-adds per second (GMAC/s):
//   peak/avx2/i8_sign      vpsignb + vpmaddubsw + vpmaddwd + vpaddd: signed x signed int8 without VNNI
//                          (the Q8_0 tiles: 32 multiply-adds)
//   peak/avx2/i8_u8s8      vpmaddubsw + vpmaddwd + vpaddd: unsigned x signed int8 (32)
//   peak/avx2/i8_pairs16   vpmaddubsw + vpaddw: int16 pair sums, widened later (4-bit codes; 32)
//   peak/avx2/f32_fma      vfmadd231ps (float weights; 8)
// A kernel's GMAC/s in bench_kernels against the ceiling of its inner sequence says how much of the
// core it uses (docs/BENCHMARKS.md, AVX2 section).
#include <benchmark/benchmark.h>

#if defined(__x86_64__)

namespace {

#define LLMOPT_CHAINS(OP) OP("0") OP("1") OP("2") OP("3") OP("4") OP("5") OP("6") OP("7")
#define LLMOPT_I8_SIGN(i)                          \
  "vpsignb %%ymm15, %%ymm14, %%ymm8\n\t"           \
  "vpmaddubsw %%ymm8, %%ymm13, %%ymm9\n\t"         \
  "vpmaddwd %%ymm12, %%ymm9, %%ymm10\n\t"          \
  "vpaddd %%ymm10, %%ymm" i ", %%ymm" i "\n\t"
#define LLMOPT_I8_U8S8(i)                          \
  "vpmaddubsw %%ymm15, %%ymm13, %%ymm9\n\t"        \
  "vpmaddwd %%ymm12, %%ymm9, %%ymm10\n\t"          \
  "vpaddd %%ymm10, %%ymm" i ", %%ymm" i "\n\t"
#define LLMOPT_I8_PAIRS16(i)                       \
  "vpmaddubsw %%ymm15, %%ymm13, %%ymm9\n\t"        \
  "vpaddw %%ymm9, %%ymm" i ", %%ymm" i "\n\t"
#define LLMOPT_F32_FMA(i) "vfmadd231ps %%ymm15, %%ymm13, %%ymm" i "\n\t"
#define LLMOPT_CLOBBERS                                                                              \
  "xmm0", "xmm1", "xmm2", "xmm3", "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm12", \
      "xmm13", "xmm14", "xmm15"

enum class Mix { kI8Sign, kI8U8S8, kI8Pairs16, kF32Fma };

// 64 repetitions of the 8 chains per call.
__attribute__((target("avx2,fma"))) void run64(Mix mix) {
  for (int i = 0; i < 64; ++i) {
    switch (mix) {
      case Mix::kI8Sign:
        asm volatile(LLMOPT_CHAINS(LLMOPT_I8_SIGN) ::: LLMOPT_CLOBBERS);
        break;
      case Mix::kI8U8S8:
        asm volatile(LLMOPT_CHAINS(LLMOPT_I8_U8S8) ::: LLMOPT_CLOBBERS);
        break;
      case Mix::kI8Pairs16:
        asm volatile(LLMOPT_CHAINS(LLMOPT_I8_PAIRS16) ::: LLMOPT_CLOBBERS);
        break;
      case Mix::kF32Fma:
        asm volatile(LLMOPT_CHAINS(LLMOPT_F32_FMA) ::: LLMOPT_CLOBBERS);
        break;
    }
  }
}

void bm_peak(benchmark::State& state, Mix mix, int macs_per_op) {
  if (!__builtin_cpu_supports("avx2") || !__builtin_cpu_supports("fma")) {
    state.SkipWithError("this CPU has no AVX2 + FMA");
    return;
  }
  for (auto _ : state) run64(mix);
  const double macs = static_cast<double>(state.iterations()) * 64.0 * 8.0 * macs_per_op;
  state.counters["GMAC"] = benchmark::Counter(macs * 1e-9, benchmark::Counter::kIsRate);  // per second
}

BENCHMARK_CAPTURE(bm_peak, avx2_i8_sign, Mix::kI8Sign, 32)->Name("peak/avx2/i8_sign");
BENCHMARK_CAPTURE(bm_peak, avx2_i8_u8s8, Mix::kI8U8S8, 32)->Name("peak/avx2/i8_u8s8");
BENCHMARK_CAPTURE(bm_peak, avx2_i8_pairs16, Mix::kI8Pairs16, 32)->Name("peak/avx2/i8_pairs16");
BENCHMARK_CAPTURE(bm_peak, avx2_f32_fma, Mix::kF32Fma, 8)->Name("peak/avx2/f32_fma");

}  // namespace

#endif
