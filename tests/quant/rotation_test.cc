// quant::rotation_block (the odd part of the row length) and quant::random_orthogonal (Q Q^T = I,
// the same matrix for the same seed, a different one for another seed).
#include <gtest/gtest.h>

#include <cmath>

#include "quant/rotation.h"

namespace llmopt::quant {
namespace {

TEST(Rotation, BlockIsTheOddPart) {
  EXPECT_EQ(*rotation_block(172), 43);
  EXPECT_EQ(*rotation_block(384), 3);
  EXPECT_EQ(*rotation_block(2048), 1);
  EXPECT_EQ(*rotation_block(11008), 43);
  EXPECT_EQ(*rotation_block(255), 255);
  auto big = rotation_block(2 * 257);
  ASSERT_FALSE(big.ok());
  EXPECT_NE(big.status().message().find("at most 256"), std::string::npos) << big.status().message();
  EXPECT_FALSE(rotation_block(0).ok());
}

TEST(Rotation, RandomOrthogonalIsOrthogonalAndSeeded) {
  for (int64_t m : {1, 3, 43, 128}) {
    const std::vector<float> q = random_orthogonal(m, 7);
    ASSERT_EQ(q.size(), static_cast<size_t>(m * m));
    for (int64_t i = 0; i < m; ++i) {
      for (int64_t j = 0; j < m; ++j) {
        double d = 0.0;
        for (int64_t c = 0; c < m; ++c) d += double(q[i * m + c]) * q[j * m + c];
        EXPECT_NEAR(d, i == j ? 1.0 : 0.0, 1e-6) << m << " " << i << " " << j;
      }
    }
    EXPECT_EQ(q, random_orthogonal(m, 7));
    if (m > 1) {
      EXPECT_NE(q, random_orthogonal(m, 8));
    }
  }
}

}  // namespace
}  // namespace llmopt::quant
