// GGUF v2/v3 reader and writer (the format of llama.cpp). The full layout is documented in gguf_reader.cc.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "core/mmap_file.h"
#include "core/status.h"
#include "formats/weight_source.h"

namespace llmopt {

class GgufFile : public WeightSource {
 public:
  // Maps (or, FileLoad::kRead, reads into memory) and parses; every count, length and offset is
  // checked against the file size.
  // Errors read "<path>: <problem>", e.g. "m.gguf: tensor 'blk.0.attn_q.weight' data (offset 1234,
  // 4096 bytes) extends past end of file (size 2000)".
  static Result<std::unique_ptr<GgufFile>> open(const std::string& path, FileLoad how = FileLoad::kMap);
  // Same, over bytes already in memory (fuzzing, tests). `name` is used in messages.
  static Result<std::unique_ptr<GgufFile>> parse(const uint8_t* data, size_t size, const std::string& name);

  const std::string& origin() const override { return origin_; }
  const Metadata& metadata() const override { return metadata_; }
  const std::vector<NamedTensor>& tensors() const override { return tensors_; }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }
  size_t data_offset() const { return data_offset_; }
  // When the file was read into this process's private memory (FileLoad::kRead): the tensors, whose
  // bytes the caller may then rewrite in place (a layout change at load, e.g. LoadOptions::repack;
  // the caller updates the view's type to match). nullptr when the file is mapped: its pages are the
  // page cache's, shared with other processes.
  std::vector<NamedTensor>* tensors_in_private_memory() {
    return file_ != nullptr && file_->private_data() != nullptr ? &tensors_ : nullptr;
  }

 private:
  std::string origin_;
  std::shared_ptr<MappedFile> file_;
  Metadata metadata_;
  std::vector<NamedTensor> tensors_;
  uint32_t version_ = 0;
  uint32_t alignment_ = 32;
  size_t data_offset_ = 0;
  // Copies of tensors whose bytes in the file are not aligned for their element type.
  std::vector<std::shared_ptr<const void>> owned_;
};

// Writes GGUF v3: metadata in the given order, tensors in the order added, data aligned to
// general.alignment (default 32). Tensor bytes are copied from the views at write time.
class GgufWriter {
 public:
  GgufWriter() = default;
  Metadata& metadata() { return metadata_; }
  void add_tensor(const std::string& name, const TensorView& view);
  Status write(const std::string& path) const;

 private:
  Metadata metadata_;
  std::vector<NamedTensor> tensors_;
};

}  // namespace llmopt
