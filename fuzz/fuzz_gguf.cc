// libFuzzer target for the GGUF reader: any input must parse or fail with a message; when it
// parses, every tensor byte and every metadata value must be readable and consistent.
#include <cstddef>
#include <cstdint>

#include "formats/gguf.h"

namespace {

uint64_t touch(const llmopt::MetaValue& v) {
  uint64_t h = static_cast<uint64_t>(v.type) + v.u + static_cast<uint64_t>(v.i) + v.s.size();
  if (auto i = v.as_int()) h += static_cast<uint64_t>(*i);
  if (auto f = v.as_float()) h += static_cast<uint64_t>(*f != 0.0);
  for (unsigned char c : v.s) h = h * 31 + c;
  for (const auto& e : v.arr) {
    if (e.type != v.elem_type) __builtin_trap();
    h += touch(e);
  }
  return h;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto f = llmopt::GgufFile::parse(data, size, "fuzz.gguf");
  if (!f.ok()) {
    if (f.status().message().empty()) __builtin_trap();
    return 0;
  }
  volatile uint64_t sink = 0;
  for (const auto& [key, value] : (*f)->metadata().entries()) sink = sink + key.size() + touch(value);
  for (const auto& t : (*f)->tensors()) {
    // NOTE: TensorView::rows() divides by the innermost extent, which may be 0 here.
    const int64_t inner = t.view.shape.empty() ? 1 : t.view.shape.back();
    const int64_t outer = inner == 0 ? 0 : t.view.numel() / inner;
    auto expect = llmopt::dtype_row_bytes(t.view.type, inner);
    if (!expect || *expect * static_cast<size_t>(outer) != t.view.nbytes) __builtin_trap();
    uint64_t h = 0;
    for (size_t k = 0; k < t.view.nbytes; ++k) h += t.view.data[k];
    sink = sink + h;
    if ((*f)->find(t.name) == nullptr) __builtin_trap();
  }
  return 0;
}
