// libFuzzer target for the safetensors reader: any input must parse or fail with a message; when
// it parses, every tensor's bytes must be readable and match its shape and dtype.
#include <cstddef>
#include <cstdint>

#include "formats/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto src = llmopt::parse_safetensors(data, size, "fuzz.safetensors");
  if (!src.ok()) {
    if (src.status().message().empty()) __builtin_trap();
    return 0;
  }
  volatile uint64_t sink = 0;
  for (const auto& [key, value] : (*src)->metadata().entries()) sink = sink + key.size() + value.s.size();
  for (const auto& t : (*src)->tensors()) {
    const auto& info = llmopt::dtype_info(t.view.type);
    if (static_cast<uint64_t>(t.view.numel()) * info.type_size != t.view.nbytes) __builtin_trap();
    uint64_t h = 0;
    for (size_t k = 0; k < t.view.nbytes; ++k) h += t.view.data[k];
    sink = sink + h;
  }
  return 0;
}
