// kernels::rotate_rows against R = (H_p / sqrt(p)) (x) Q written out as a dense matrix here (Sylvester
// Hadamard entries (-1)^popcount(a & c), element (a*m + b) of a row), in double; its inverse; and the
// i8_ch product with a rotation, against x W^T with W = dequant(codes) R^T (only the int8 rounding of
// x R differs from it).
#include <gtest/gtest.h>

#include <bit>
#include <cmath>
#include <random>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"
#include "core/thread_pool.h"
#include "kernels/kernels.h"
#include "kernels/rotate.h"

namespace llmopt::kernels {
namespace {

// An orthogonal m x m matrix (Gram-Schmidt on Gaussian rows), from this test's own generator.
std::vector<float> orthogonal(int64_t m, unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<double> g;
  std::vector<double> a(static_cast<size_t>(m * m));
  for (double& v : a) v = g(rng);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < i; ++j) {
      double d = 0.0;
      for (int64_t c = 0; c < m; ++c) d += a[i * m + c] * a[j * m + c];
      for (int64_t c = 0; c < m; ++c) a[i * m + c] -= d * a[j * m + c];
    }
    double n = 0.0;
    for (int64_t c = 0; c < m; ++c) n += a[i * m + c] * a[i * m + c];
    for (int64_t c = 0; c < m; ++c) a[i * m + c] /= std::sqrt(n);
  }
  return std::vector<float>(a.begin(), a.end());
}

// R[(a, b)][(c, d)] = (-1)^popcount(a & c) / sqrt(p) * Q[b][d], n = p * m.
std::vector<double> dense_r(const std::vector<float>& q, int64_t m, int64_t n) {
  const int64_t p = n / m;
  std::vector<double> r(static_cast<size_t>(n * n));
  for (int64_t a = 0; a < p; ++a)
    for (int64_t b = 0; b < m; ++b)
      for (int64_t c = 0; c < p; ++c)
        for (int64_t d = 0; d < m; ++d) {
          const double h = (std::popcount(static_cast<uint64_t>(a & c)) % 2 ? -1.0 : 1.0) / std::sqrt(double(p));
          r[(a * m + b) * n + c * m + d] = h * q[b * m + d];
        }
  return r;
}

TEST(Rotate, MatchesTheDenseMatrixAndItsTranspose) {
  for (auto [n, m] : {std::pair<int64_t, int64_t>{172, 43}, {64, 1}, {384, 3}, {40, 5}, {7, 7}, {256, 1}}) {
    SCOPED_TRACE("n=" + std::to_string(n) + " m=" + std::to_string(m));
    const std::vector<float> q = orthogonal(m, static_cast<unsigned>(n));
    const std::vector<double> r = dense_r(q, m, n);
    const int64_t rows = 3;
    std::mt19937 rng(1);
    std::normal_distribution<float> g;
    std::vector<float> x(static_cast<size_t>(rows * n));
    for (float& v : x) v = g(rng);
    x[5] = 40.0f;  // an outlier channel
    std::vector<float> y(x.size()), back(x.size());
    rotate_rows(q.data(), m, x.data(), rows, n, y.data());
    rotate_rows(q.data(), m, y.data(), rows, n, back.data(), /*inverse=*/true);
    for (int64_t i = 0; i < rows; ++i) {
      double nx = 0.0, ny = 0.0;
      for (int64_t c = 0; c < n; ++c) {
        double want = 0.0;
        for (int64_t j = 0; j < n; ++j) want += static_cast<double>(x[i * n + j]) * r[j * n + c];
        EXPECT_NEAR(y[i * n + c], want, 1e-4 * (1.0 + std::fabs(want)));
        EXPECT_NEAR(back[i * n + c], x[i * n + c], 1e-4 * (1.0 + std::fabs(x[i * n + c])));
        nx += double(x[i * n + c]) * x[i * n + c];
        ny += double(y[i * n + c]) * y[i * n + c];
      }
      EXPECT_NEAR(ny, nx, 1e-5 * nx);  // orthogonal: lengths kept
    }
    // In place gives the same bits.
    std::vector<float> inplace = x;
    rotate_rows(q.data(), m, inplace.data(), rows, n, inplace.data());
    EXPECT_EQ(inplace, y);
  }
}

TEST(Rotate, ShapeCheck) {
  EXPECT_TRUE(check_rotation_shape(172, 43).ok());
  EXPECT_TRUE(check_rotation_shape(2048, 1).ok());
  EXPECT_FALSE(check_rotation_shape(172, 5).ok());   // does not divide
  EXPECT_FALSE(check_rotation_shape(129, 43).ok());  // 3 blocks: not a power of two
  EXPECT_NE(check_rotation_shape(129, 43).message().find("power of two"), std::string::npos);
  EXPECT_FALSE(check_rotation_shape(64, 0).ok());
  EXPECT_TRUE(check_rotation_shape(256, 256).ok());
  EXPECT_FALSE(check_rotation_shape(512, 512).ok());  // a file may not ask for an m^3 check of any size
}

TEST(Rotate, I8ChProductRotatesTheActivations) {
  const int64_t n_out = 5, k = 172, m_rot = 43, m = 4;
  const std::vector<float> q = orthogonal(m_rot, 9);
  const std::vector<double> r = dense_r(q, m_rot, k);
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> code(-127, 127);
  std::normal_distribution<float> g;
  std::vector<int8_t> w(static_cast<size_t>(n_out * k));
  for (int8_t& v : w) v = static_cast<int8_t>(code(rng));
  std::vector<float> ws(n_out);
  for (int64_t i = 0; i < n_out; ++i) ws[i] = 0.001f * float(i + 1);
  std::vector<float> x(static_cast<size_t>(m * k));
  for (float& v : x) v = g(rng);
  for (int64_t i = 0; i < m; ++i) x[i * k + 17] = 25.0f;  // an outlier channel in every row
  TensorView tv;
  tv.type = DType::kI8Ch;
  tv.shape = {n_out, k};
  tv.data = reinterpret_cast<const uint8_t*>(w.data());
  tv.nbytes = w.size();
  tv.row_scale = ws.data();
  tv.rot = q.data();
  tv.rot_m = m_rot;
  // The weight this view stands for: row i = ws[i] * codes[i] R^T.
  std::vector<double> wt(static_cast<size_t>(n_out * k), 0.0);
  for (int64_t i = 0; i < n_out; ++i)
    for (int64_t c = 0; c < k; ++c)
      for (int64_t j = 0; j < k; ++j) wt[i * k + c] += double(ws[i]) * w[i * k + j] * r[c * k + j];
  std::vector<float> row(k);
  dequantize_view_row(tv, 2, row.data());
  for (int64_t c = 0; c < k; ++c) EXPECT_NEAR(row[c], wt[2 * k + c], 1e-5);
  ThreadPool pool(2);
  std::vector<float> y(static_cast<size_t>(m * n_out));
  matmul(tv, x.data(), m, y.data(), pool);
  for (int64_t i = 0; i < m; ++i) {
    // The rotated row's int8 step (max |x R| / 127 per token) bounds the error: half a step per element.
    std::vector<double> xr(k, 0.0);
    double amax = 0.0;
    for (int64_t c = 0; c < k; ++c) {
      for (int64_t j = 0; j < k; ++j) xr[c] += double(x[i * k + j]) * r[j * k + c];
      amax = std::max(amax, std::fabs(xr[c]));
    }
    const double step = amax / 127.0;
    for (int64_t o = 0; o < n_out; ++o) {
      double want = 0.0, wabs = 0.0;
      for (int64_t c = 0; c < k; ++c) {
        want += double(x[i * k + c]) * wt[o * k + c];
        wabs += std::fabs(double(ws[o]) * w[o * k + c]);
      }
      EXPECT_NEAR(y[i * n_out + o], want, 0.5 * step * wabs + 1e-4) << "row " << i << " out " << o;
    }
  }
}

}  // namespace
}  // namespace llmopt::kernels
