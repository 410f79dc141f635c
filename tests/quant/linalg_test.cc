// Cholesky, SPD inverse and the upper Cholesky factor of the inverse, checked by multiplying back.
#include "quant/linalg.h"

#include <gtest/gtest.h>

#include <cmath>

#include "quant_test_util.h"

namespace llmopt::quant {
namespace {

// A = B B^T + 0.1 I for a random B: symmetric positive definite.
std::vector<double> random_spd(int64_t n, uint32_t seed) {
  const auto b = testdata::gaussian(n * n, seed);
  std::vector<double> a(static_cast<size_t>(n * n), 0.0);
  for (int64_t i = 0; i < n; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double s = i == j ? 0.1 : 0.0;
      for (int64_t k = 0; k < n; ++k) s += static_cast<double>(b[i * n + k]) * b[j * n + k];
      a[i * n + j] = s;
    }
  }
  return a;
}

TEST(Linalg, InverseAndUpperCholeskyOfInverse) {
  for (int64_t n : {1, 2, 7, 33}) {
    SCOPED_TRACE(n);
    const auto a = random_spd(n, static_cast<uint32_t>(n));
    auto l = a;
    ASSERT_TRUE(cholesky_lower(l, n).ok());
    auto inv = spd_inverse(a, n);
    auto u = upper_cholesky_of_inverse(a, n);
    ASSERT_TRUE(inv.ok() && u.ok());
    for (int64_t i = 0; i < n; ++i) {
      for (int64_t j = 0; j < n; ++j) {
        double llt = 0.0, ainv = 0.0, utu = 0.0;
        for (int64_t k = 0; k < n; ++k) {
          llt += l[i * n + k] * l[j * n + k];
          ainv += a[i * n + k] * (*inv)[k * n + j];
          utu += (*u)[k * n + i] * (*u)[k * n + j];
        }
        EXPECT_NEAR(llt, a[i * n + j], 1e-9 * (1 + std::fabs(a[i * n + j])));
        EXPECT_NEAR(ainv, i == j ? 1.0 : 0.0, 1e-8);
        EXPECT_NEAR(utu, (*inv)[i * n + j], 1e-8 * (1 + std::fabs((*inv)[i * n + j])));
        if (j > i) {
          EXPECT_EQ(l[i * n + j], 0.0);
        }
        if (j < i) {
          EXPECT_EQ((*u)[i * n + j], 0.0);
        }
      }
    }
  }
}

TEST(Linalg, NotPositiveDefiniteIsAnError) {
  std::vector<double> a = {1, 2, 2, 1};  // eigenvalues 3 and -1
  const Status st = cholesky_lower(a, 2);
  ASSERT_FALSE(st.ok());
  EXPECT_NE(st.message().find("not positive definite (pivot 1"), std::string::npos) << st.message();
  auto u = upper_cholesky_of_inverse({1, 2, 2, 1}, 2);
  EXPECT_FALSE(u.ok());
}

}  // namespace
}  // namespace llmopt::quant
