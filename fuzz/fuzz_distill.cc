// libFuzzer target for the distillation data (.dist) reader: any input must parse or fail with a
// message; when it parses, every row must be readable and within the vocabulary.
#include <cstddef>
#include <cstdint>

#include "train/distill_data.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto s = llmopt::train::parse_distill_set(data, size, "fuzz.dist");
  if (!s.ok()) {
    if (s.status().message().empty()) __builtin_trap();
    return 0;
  }
  if (s->ids.size() != s->size() * static_cast<size_t>(s->k)) __builtin_trap();
  volatile double sink = 0;
  for (size_t i = 0; i + 1 < s->size(); ++i) {
    for (int j = 0; j < s->k; ++j) {
      const int32_t id = s->ids[i * static_cast<size_t>(s->k) + static_cast<size_t>(j)];
      if (id >= s->n_vocab) __builtin_trap();
      sink = sink + s->probs[i * static_cast<size_t>(s->k) + static_cast<size_t>(j)];
    }
    sink = sink + (s->is_soft(i) ? 1 : 0);
  }
  return 0;
}
