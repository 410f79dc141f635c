// HugeBuffer: a zero-filled, page-aligned block of anonymous memory for large, long-lived arrays (the
// KV cache, weights copied out of a file). Blocks of 2 MiB and more ask the kernel for transparent
// huge pages (madvise MADV_HUGEPAGE, before the first touch), so streaming through them costs fewer
// TLB misses; where the kernel offers none it is ordinary memory. Move-only.
#pragma once

#include <cstddef>
#include <cstdint>

namespace llmopt {

class HugeBuffer {
 public:
  HugeBuffer() = default;
  // n bytes, all zero. CHECK-fails when the memory cannot be mapped.
  explicit HugeBuffer(size_t n);
  ~HugeBuffer();
  HugeBuffer(HugeBuffer&& o) noexcept;
  HugeBuffer& operator=(HugeBuffer&& o) noexcept;
  HugeBuffer(const HugeBuffer&) = delete;
  HugeBuffer& operator=(const HugeBuffer&) = delete;

  uint8_t* data() { return data_; }
  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  // Commits every page now (one write per 4 KiB), so that first use does not stop for page faults
  // and zeroing; costs the whole size in resident memory.
  void prefault();

 private:
  void release();
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace llmopt
