// WeightSource lookup and MemoryWeightSource's owned tensors (Storage kept alive by the source).
#include "formats/weight_source.h"

#include <cstring>

namespace llmopt {

const TensorView* WeightSource::find(const std::string& name) const {
  for (const auto& t : tensors()) {
    if (t.name == name) return &t.view;
  }
  return nullptr;
}

uint8_t* MemoryWeightSource::add_owned_tensor(std::string name, DType type, std::vector<int64_t> shape,
                                              size_t nbytes) {
  auto storage = std::make_shared<Storage>(nbytes);
  uint8_t* p = storage->data();
  std::memset(p, 0, nbytes);
  keep_alive(storage);
  TensorView view;
  view.type = type;
  view.shape = std::move(shape);
  view.data = p;
  view.nbytes = nbytes;
  add_tensor(std::move(name), std::move(view));
  return p;
}

}  // namespace llmopt
