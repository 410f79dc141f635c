// Read-only model files: mapped (served straight from the page cache), or read once into anonymous
// memory in transparent huge pages (FileLoad::kRead), which decode streams faster: fewer TLB misses,
// and the hardware prefetchers are not stopped at every 4 KiB page boundary.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "core/huge_buffer.h"
#include "core/status.h"

namespace llmopt {

enum class FileLoad {
  kMap,   // mmap the file (shared with other processes, paged in on demand)
  kRead,  // read it into private huge-page memory (measured: decode 0-17% faster, see BENCHMARKS.md);
          // a file larger than 90% of the memory available is mapped instead
};

// MemAvailable from /proc/meminfo in bytes (the largest size_t when unknown).
size_t available_memory_bytes();

class MappedFile {
 public:
  // The whole file, read-only. Errors name the path and the reason (missing, a directory, ...).
  static Result<std::shared_ptr<MappedFile>> open(const std::string& path, FileLoad how = FileLoad::kMap);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  // FileLoad::kRead: the same bytes with write access (this process's private copy, for layout
  // changes at load); nullptr when the file is mapped.
  uint8_t* private_data() { return copy_.data(); }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
  std::string path_;
  HugeBuffer copy_;  // FileLoad::kRead: the file's bytes
};

// Reads a whole (small) file into a string: config.json, tokenizer.json, ...
Result<std::string> read_text_file(const std::string& path);

}  // namespace llmopt
