// linear_forward / linear_backward in f32 (the fast kernels-layer path) against the f64 loops, and
// bit-identical f32 results for any thread count (the trainer's reproducibility promise).
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "train/ops.h"

namespace llmopt::train {
namespace {

std::vector<float> random_vec(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  std::vector<float> v(n);
  for (auto& x : v) x = d(rng);
  return v;
}

struct LinearRun {
  std::vector<float> y, dx, dw, db;
};

LinearRun run_f32(int64_t n, int64_t in, int64_t out, int threads) {
  const auto x = random_vec(static_cast<size_t>(n * in), 1);
  const auto w = random_vec(static_cast<size_t>(out * in), 2);
  const auto b = random_vec(static_cast<size_t>(out), 3);
  const auto dy = random_vec(static_cast<size_t>(n * out), 4);
  ThreadPool pool(threads);
  LinearRun r;
  r.y.assign(static_cast<size_t>(n * out), 0.0f);
  linear_forward<float>(x.data(), w.data(), b.data(), n, in, out, r.y.data(), pool);
  // Gradients start non-zero: backward accumulates.
  r.dx = random_vec(static_cast<size_t>(n * in), 5);
  r.dw = random_vec(static_cast<size_t>(out * in), 6);
  r.db = random_vec(static_cast<size_t>(out), 7);
  linear_backward<float>(dy.data(), x.data(), w.data(), n, in, out, r.dx.data(), r.dw.data(), r.db.data(), pool);
  return r;
}

void expect_close(const std::vector<float>& got, const std::vector<double>& want, double k, const char* what) {
  ASSERT_EQ(got.size(), want.size());
  const double tol = 1e-5 * std::sqrt(static_cast<double>(k)) + 1e-6;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_NEAR(got[i], want[i], tol * (1.0 + std::fabs(want[i]))) << what << " [" << i << "]";
  }
}

void check_shape(int64_t n, int64_t in, int64_t out) {
  SCOPED_TRACE(::testing::Message() << "n=" << n << " in=" << in << " out=" << out);
  const LinearRun f = run_f32(n, in, out, 2);

  auto cvt = [](const std::vector<float>& v) { return std::vector<double>(v.begin(), v.end()); };
  const auto x = cvt(random_vec(static_cast<size_t>(n * in), 1));
  const auto w = cvt(random_vec(static_cast<size_t>(out * in), 2));
  const auto b = cvt(random_vec(static_cast<size_t>(out), 3));
  const auto dy = cvt(random_vec(static_cast<size_t>(n * out), 4));
  ThreadPool pool(2);
  std::vector<double> y(static_cast<size_t>(n * out));
  linear_forward<double>(x.data(), w.data(), b.data(), n, in, out, y.data(), pool);
  auto dx = cvt(random_vec(static_cast<size_t>(n * in), 5));
  auto dw = cvt(random_vec(static_cast<size_t>(out * in), 6));
  auto db = cvt(random_vec(static_cast<size_t>(out), 7));
  linear_backward<double>(dy.data(), x.data(), w.data(), n, in, out, dx.data(), dw.data(), db.data(), pool);
  expect_close(f.y, y, static_cast<double>(in), "y");
  expect_close(f.dx, dx, static_cast<double>(out), "dx");
  expect_close(f.dw, dw, static_cast<double>(n), "dw");
  expect_close(f.db, db, static_cast<double>(n), "db");

  for (int threads : {1, 3}) {
    const LinearRun g = run_f32(n, in, out, threads);
    EXPECT_EQ(g.y, f.y) << "threads " << threads;
    EXPECT_EQ(g.dx, f.dx) << "threads " << threads;
    EXPECT_EQ(g.dw, f.dw) << "threads " << threads;
    EXPECT_EQ(g.db, f.db) << "threads " << threads;
  }
}

TEST(TrainLinear, F32MatchesF64AndIsThreadCountIndependent) {
  check_shape(1, 1, 1);
  check_shape(7, 13, 37);   // tails everywhere, out > in
  check_shape(37, 70, 9);   // in > out
  check_shape(64, 96, 256);
  check_shape(130, 200, 1029);
}

}  // namespace
}  // namespace llmopt::train
