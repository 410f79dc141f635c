// Shape printing and aligned owning storage.
#include "core/tensor.h"

#include <cstdlib>
#include <new>

namespace llmopt {

std::string shape_to_string(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

Storage::Storage(size_t nbytes) : size_(nbytes) {
  size_t alloc = (nbytes + 63) / 64 * 64;
  if (alloc == 0) alloc = 64;
  void* p = std::aligned_alloc(64, alloc);
  if (p == nullptr) throw std::bad_alloc();
  data_.reset(static_cast<uint8_t*>(p));
}

void Storage::Free::operator()(uint8_t* p) const { std::free(p); }

}  // namespace llmopt
