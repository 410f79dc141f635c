// Helpers for kernel tests that walk every ISA this CPU has.
#pragma once

#include <vector>

#include "kernels/kernels.h"

namespace llmopt::kernels::test {

// Restores the ISA selected before the test.
class IsaGuard {
 public:
  IsaGuard() : saved_(active_isa()) {}
  ~IsaGuard() { set_isa(saved_); }
  IsaGuard(const IsaGuard&) = delete;
  IsaGuard& operator=(const IsaGuard&) = delete;

 private:
  Isa saved_;
};

inline std::vector<Isa> supported_isas() {
  std::vector<Isa> out;
  for (Isa isa : {Isa::kRef, Isa::kAvx2, Isa::kAvx512, Isa::kAmx}) {
    if (isa_supported(isa)) out.push_back(isa);
  }
  return out;
}

}  // namespace llmopt::kernels::test
