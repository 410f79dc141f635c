// Rng: the training run's deterministic random stream (splitmix64 over a 64-bit counter state).
// One u64 is its whole state, so a checkpoint stores it and a resumed run draws the same numbers.
#pragma once

#include <cmath>
#include <cstdint>

namespace llmopt::train {

class Rng {
 public:
  explicit Rng(uint64_t seed = 0) : state_(seed) {}

  uint64_t next_u64() {
    uint64_t z = (state_ += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform integer in [0, n) (n > 0), by the multiply-high method.
  uint64_t below(uint64_t n) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(next_u64()) * n) >> 64);
  }
  // Uniform double in (0, 1].
  double uniform_open0() { return (static_cast<double>(next_u64() >> 11) + 1.0) * 0x1.0p-53; }
  // Standard normal by Box-Muller (one value per two draws, no cached spare: the state stays one u64).
  double normal() {
    const double u1 = uniform_open0();
    const double u2 = uniform_open0();
    return std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586476925 * u2);
  }

  uint64_t state() const { return state_; }
  void set_state(uint64_t s) { state_ = s; }

 private:
  uint64_t state_;
};

}  // namespace llmopt::train
