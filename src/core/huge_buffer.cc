// See huge_buffer.h.
#include "core/huge_buffer.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <utility>

#include "core/check.h"

namespace llmopt {

namespace {
constexpr size_t kHugePage = size_t{2} << 20;
}  // namespace

HugeBuffer::HugeBuffer(size_t n) : size_(n) {
  if (n == 0) return;
  void* p = mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) {
    const std::string msg = "cannot map " + std::to_string(n) + " bytes: " + std::strerror(errno);
    LLMOPT_CHECK_MSG(p != MAP_FAILED, msg.c_str());
  }
  // NOTE: advice only; without transparent huge pages (or with them off) the call fails harmlessly.
  if (n >= kHugePage) (void)madvise(p, n, MADV_HUGEPAGE);
  data_ = static_cast<uint8_t*>(p);
}

HugeBuffer::~HugeBuffer() { release(); }

void HugeBuffer::prefault() {
  volatile uint8_t* p = data_;
  for (size_t off = 0; off < size_; off += 4096) p[off] = 0;
}

HugeBuffer::HugeBuffer(HugeBuffer&& o) noexcept
    : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}

HugeBuffer& HugeBuffer::operator=(HugeBuffer&& o) noexcept {
  if (this != &o) {
    release();
    data_ = std::exchange(o.data_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

void HugeBuffer::release() {
  if (data_ != nullptr) munmap(data_, size_);
  data_ = nullptr;
  size_ = 0;
}

}  // namespace llmopt
