#include "core/huge_buffer.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstdint>
#include <utility>
#include <vector>

namespace llmopt {
namespace {

TEST(HugeBuffer, ZeroFilledWritableAndMovable) {
  for (size_t n : {size_t{2}, size_t{4096} + 3, (size_t{2} << 20) + 123}) {  // under and over one huge page
    HugeBuffer b(n);
    ASSERT_NE(b.data(), nullptr);
    ASSERT_EQ(b.size(), n);
    EXPECT_EQ(reinterpret_cast<uintptr_t>(b.data()) % 4096, 0u);
    uint64_t sum = 0;
    for (size_t i = 0; i < n; i += 997) sum += b.data()[i];
    EXPECT_EQ(sum + b.data()[n - 1], 0u) << n;
    b.data()[0] = 7;
    b.data()[n - 1] = 9;
    HugeBuffer moved(std::move(b));
    EXPECT_EQ(b.data(), nullptr);  // NOLINT(bugprone-use-after-move): the moved-from state is specified
    EXPECT_EQ(b.size(), 0u);
    EXPECT_EQ(moved.data()[0], 7);
    EXPECT_EQ(moved.data()[n - 1], 9);
    HugeBuffer other(16);
    other = std::move(moved);
    EXPECT_EQ(other.size(), n);
    EXPECT_EQ(other.data()[n - 1], 9);
  }
  HugeBuffer empty(0);
  EXPECT_EQ(empty.data(), nullptr);
  EXPECT_EQ(empty.size(), 0u);
}

// Pages of b that are resident, by mincore(2) (which reports anonymous memory too).
size_t resident_pages(HugeBuffer& b) {
  const size_t pages = (b.size() + 4095) / 4096;
  std::vector<unsigned char> v(pages);
  if (mincore(b.data(), b.size(), v.data()) != 0) return 0;
  size_t n = 0;
  for (unsigned char c : v) n += c & 1;
  return n;
}

TEST(HugeBuffer, PrefaultCommitsEveryPageAndKeepsZeros) {
  const size_t n = (size_t{3} << 20) + 5000;  // huge pages and a ragged tail
  HugeBuffer b(n);
  const size_t pages = (n + 4095) / 4096;
  ASSERT_LT(resident_pages(b), pages);  // fresh anonymous memory: nothing committed yet
  b.prefault();
  EXPECT_EQ(resident_pages(b), pages);
  uint64_t sum = 0;
  for (size_t i = 0; i < n; ++i) sum += b.data()[i];
  EXPECT_EQ(sum, 0u);
  HugeBuffer empty(0);
  empty.prefault();  // nothing to do, no crash
}

}  // namespace
}  // namespace llmopt
