#include "core/huge_buffer.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <utility>

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

}  // namespace
}  // namespace llmopt
