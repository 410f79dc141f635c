// Chooses the kernels once: detects the CPU's instruction sets, applies the LLMOPT_ISA override
// (read once, at first use) and keeps the selection that set_isa() may change later.
#include "kernels/dispatch.h"

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>

#include "core/log.h"

namespace llmopt::kernels {
namespace {

#if defined(__x86_64__) || defined(__i386__)
constexpr bool kX86 = true;
bool cpu_has_avx2() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c");
}
bool cpu_has_avx512() {
  __builtin_cpu_init();
  // NOTE: GCC's checks include the OS's XSAVE support for the ZMM state.
  return cpu_has_avx2() && __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
         __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512vnni");
}
bool cpu_has_amx() { return cpu_has_avx512() && amx::usable(); }
const IsaKernels* kernels_for(Isa isa) {
  switch (isa) {
    case Isa::kAvx2:
      return &avx2::kernels();
    case Isa::kAvx512:
      return &avx512::kernels();
    case Isa::kAmx:
      return &amx::kernels();
    default:
      return nullptr;
  }
}
#else
constexpr bool kX86 = false;
bool cpu_has_avx2() { return false; }
bool cpu_has_avx512() { return false; }
bool cpu_has_amx() { return false; }
const IsaKernels* kernels_for(Isa) { return nullptr; }
#endif

Isa best_supported(Isa at_most) {
  for (int i = static_cast<int>(at_most); i > 0; --i) {
    if (isa_supported(static_cast<Isa>(i))) return static_cast<Isa>(i);
  }
  return Isa::kRef;
}

std::atomic<const IsaKernels*> g_active{nullptr};

void select(Isa requested) {
  Isa isa = requested;
  if (!isa_supported(isa)) {
    isa = best_supported(requested);
    log_warn(std::string("kernels: ") + isa_name(requested) + " is not supported on this CPU; using " +
             isa_name(isa));
  }
  g_active.store(kernels_for(isa), std::memory_order_release);
}

// Runs once, before the first selection is read or changed.
bool init_from_env() {
  // NOTE: the default is AMX where the CPU and the OS allow it (its Q8_0 batches are several times
  // faster, the other weight types run avx512.cc's kernels), else the best of AVX2 and the reference:
  // plain AVX-512 (without AMX) is chosen only on request (LLMOPT_ISA=avx512 or set_isa), as no CPU
  // measured so far gained from it. The kernel tests exercise every ISA the CPU has.
  Isa isa = isa_supported(Isa::kAmx) ? Isa::kAmx : best_supported(Isa::kAvx2);
  if (const char* env = std::getenv("LLMOPT_ISA"); env != nullptr && *env != '\0') {
    if (std::strcmp(env, "ref") == 0) {
      isa = Isa::kRef;
    } else if (std::strcmp(env, "avx2") == 0) {
      isa = Isa::kAvx2;
    } else if (std::strcmp(env, "avx512") == 0) {
      isa = Isa::kAvx512;
    } else if (std::strcmp(env, "amx") == 0) {
      isa = Isa::kAmx;
    } else {
      log_warn(std::string("kernels: LLMOPT_ISA=") + env + " is not one of ref, avx2, avx512, amx; using " +
               isa_name(isa));
    }
  }
  select(isa);
  return true;
}

void ensure_init() {
  static const bool done = init_from_env();
  (void)done;
}

}  // namespace

bool isa_supported(Isa isa) {
  switch (isa) {
    case Isa::kRef:
      return true;
    case Isa::kAvx2: {
      static const bool ok = kX86 && cpu_has_avx2();
      return ok;
    }
    case Isa::kAvx512: {
      static const bool ok = kX86 && cpu_has_avx512();
      return ok;
    }
    case Isa::kAmx: {
      static const bool ok = kX86 && cpu_has_amx();
      return ok;
    }
  }
  return false;
}

void set_isa(Isa isa) {
  ensure_init();
  select(isa);
}

Isa active_isa() {
  const IsaKernels* k = active_isa_kernels();
  return k == nullptr ? Isa::kRef : k->isa;
}

const char* isa_name(Isa isa) {
  switch (isa) {
    case Isa::kRef:
      return "ref";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512:
      return "avx512";
    case Isa::kAmx:
      return "amx";
  }
  return "?";
}

const IsaKernels* active_isa_kernels() {
  ensure_init();
  return g_active.load(std::memory_order_acquire);
}

}  // namespace llmopt::kernels
