// See rotation.h.
#include "quant/rotation.h"

#include <cmath>
#include <string>

namespace llmopt::quant {

Result<int64_t> rotation_block(int64_t n) {
  if (n < 1) return error("cannot rotate rows of " + std::to_string(n) + " elements");
  int64_t m = n;
  while (m % 2 == 0) m /= 2;
  if (m > kMaxRotationBlock) {
    return error("rows of " + std::to_string(n) + " elements are " + std::to_string(n / m) + " x " +
                 std::to_string(m) + "; --rotate needs the odd factor to be at most " +
                 std::to_string(kMaxRotationBlock));
  }
  return m;
}

namespace {
// splitmix64: a small generator whose output is fixed by its definition (std:: distributions are not).
uint64_t next_u64(uint64_t& s) {
  uint64_t z = (s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}
double uniform01(uint64_t& s) { return (static_cast<double>(next_u64(s) >> 11) + 0.5) * 0x1.0p-53; }
}  // namespace

std::vector<float> random_orthogonal(int64_t m, uint64_t seed) {
  std::vector<double> a(static_cast<size_t>(m * m));
  uint64_t s = seed;
  for (size_t i = 0; i < a.size(); i += 2) {  // Box-Muller
    const double r = std::sqrt(-2.0 * std::log(uniform01(s))), t = 2.0 * M_PI * uniform01(s);
    a[i] = r * std::cos(t);
    if (i + 1 < a.size()) a[i + 1] = r * std::sin(t);
  }
  for (int64_t i = 0; i < m; ++i) {
    double* ri = a.data() + i * m;
    for (int pass = 0; pass < 2; ++pass) {  // re-orthogonalize once: rows orthogonal to f64 rounding
      for (int64_t j = 0; j < i; ++j) {
        const double* rj = a.data() + j * m;
        double dot = 0.0;
        for (int64_t c = 0; c < m; ++c) dot += ri[c] * rj[c];
        for (int64_t c = 0; c < m; ++c) ri[c] -= dot * rj[c];
      }
    }
    double nrm = 0.0;
    for (int64_t c = 0; c < m; ++c) nrm += ri[c] * ri[c];
    nrm = std::sqrt(nrm);
    for (int64_t c = 0; c < m; ++c) ri[c] /= nrm;
  }
  return std::vector<float>(a.begin(), a.end());
}

}  // namespace llmopt::quant
