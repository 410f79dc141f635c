// WeightSource: what every model-file reader produces. Named tensors (views into a mapping or into
// storage the source owns) plus metadata. No model knowledge lives here.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "formats/metadata.h"

namespace llmopt {

struct NamedTensor {
  std::string name;
  TensorView view;
};

class WeightSource {
 public:
  virtual ~WeightSource() = default;
  // Human-readable origin for error messages (usually the path).
  virtual const std::string& origin() const = 0;
  virtual const Metadata& metadata() const = 0;
  virtual const std::vector<NamedTensor>& tensors() const = 0;
  // nullptr if there is no tensor with that name.
  const TensorView* find(const std::string& name) const;
};

// A WeightSource built in memory: importers (HF, llama2.c) and synthesizers fill it.
// Keeps alive whatever the views point into (mappings, owned Storage).
class MemoryWeightSource : public WeightSource {
 public:
  explicit MemoryWeightSource(std::string origin) : origin_(std::move(origin)) {}
  const std::string& origin() const override { return origin_; }
  const Metadata& metadata() const override { return metadata_; }
  const std::vector<NamedTensor>& tensors() const override { return tensors_; }

  Metadata& mutable_metadata() { return metadata_; }
  void add_tensor(std::string name, TensorView view) { tensors_.push_back({std::move(name), std::move(view)}); }
  // Allocates owned storage for a tensor and returns a pointer to fill.
  uint8_t* add_owned_tensor(std::string name, DType type, std::vector<int64_t> shape, size_t nbytes);
  void keep_alive(std::shared_ptr<const void> p) { keep_alive_.push_back(std::move(p)); }

 private:
  std::string origin_;
  Metadata metadata_;
  std::vector<NamedTensor> tensors_;
  std::vector<std::shared_ptr<const void>> keep_alive_;
};

}  // namespace llmopt
