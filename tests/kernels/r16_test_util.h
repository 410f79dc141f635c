// Checks shared by the regrouped-layout tests (r16_test.cc, r16_k_test.cc).
#pragma once

#include <gtest/gtest.h>

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/thread_pool.h"
#include "kernels/dispatch.h"
#include "kernels/isa_test_util.h"
#include "kernels/kernels.h"
#include "kernels/repack.h"

namespace llmopt::kernels::test {

// Products against `plain` (n_out rows of type t, k columns) regrouped equal, bit for bit, those
// against the same rows in the file layout on the AVX2 kernels (another layout and other code) on the
// ISAs with a kernel for the layout; elsewhere the reference path against the reference path. For
// each m of `ms` activation rows, 1 and 3 threads; each row also equals its one-row call (batch
// invariance). Call with an IsaGuard alive.
// rt: the regrouped type to test (default r16_type_of(t)).
inline void expect_r16_products_equal_plain(DType t, const std::vector<uint8_t>& plain, int64_t n_out, int64_t k,
                                            const std::vector<int64_t>& ms, std::mt19937& rng,
                                            DType rt = DType::kF32) {
  if (rt == DType::kF32) rt = r16_type_of(t);
  std::uniform_real_distribution<float> val(-1.0f, 1.0f);
  ThreadPool pool1(1), pool3(3);
  std::vector<uint8_t> packed = plain;
  repack_r16_as(rt, packed.data(), n_out, k);
  const TensorView wq{t, {n_out, k}, plain.data(), plain.size()};
  const TensorView wr{rt, {n_out, k}, packed.data(), packed.size()};
  std::vector<float> bias(static_cast<size_t>(n_out));
  for (auto& v : bias) v = val(rng);
  for (int64_t m : ms) {
    std::vector<float> x(static_cast<size_t>(m * k));
    for (auto& v : x) v = val(rng);
    for (Isa isa : supported_isas()) {
      SCOPED_TRACE(std::string(dtype_name(rt)) + " " + isa_name(isa) + " m=" + std::to_string(m) +
                   " k=" + std::to_string(k) + " n_out=" + std::to_string(n_out));
      set_isa(isa);
      // the ISA's kernel for rt, if it has one, against AVX2's for t; else the reference paths
      const bool fast = active_isa_kernels() != nullptr && active_isa_kernels()->find_matmul(rt).rows != nullptr;
      set_isa(fast ? Isa::kAvx2 : Isa::kRef);
      std::vector<float> want(static_cast<size_t>(m * n_out)), got(want.size()), got3(want.size());
      matmul_bias(wq, bias.data(), x.data(), m, want.data(), pool1);
      set_isa(isa);
      matmul_bias(wr, bias.data(), x.data(), m, got.data(), pool1);
      matmul_bias(wr, bias.data(), x.data(), m, got3.data(), pool3);
      for (size_t i = 0; i < want.size(); ++i) {
        ASSERT_EQ(got[i], want[i]) << "element " << i;
        ASSERT_EQ(got3[i], want[i]) << "3 threads, element " << i;
      }
      std::vector<float> y1(static_cast<size_t>(n_out));
      for (int64_t i = 0; i < m; ++i) {
        matmul_bias(wr, bias.data(), x.data() + i * k, 1, y1.data(), pool3);
        for (int64_t j = 0; j < n_out; ++j) ASSERT_EQ(y1[j], got[i * n_out + j]) << "row " << i << " col " << j;
      }
    }
  }
}

// The products of one input against all of `ws` in one matmul_multi equal each one's own matmul_bias,
// on every ISA, for each m of `ms`. Call with an IsaGuard alive.
inline void expect_multi_equals_separate(const std::vector<const TensorView*>& ws, int64_t k,
                                         const std::vector<int64_t>& ms, std::mt19937& rng) {
  ThreadPool pool(2);
  for (Isa isa : supported_isas()) {
    set_isa(isa);
    for (int64_t m : ms) {
      std::vector<float> x(static_cast<size_t>(m * k));
      for (auto& v : x) v = std::uniform_real_distribution<float>(-1.0f, 1.0f)(rng);
      std::vector<std::vector<float>> want(ws.size()), got(ws.size());
      std::vector<MatmulJob> jobs;
      for (size_t j = 0; j < ws.size(); ++j) {
        want[j].assign(static_cast<size_t>(m * ws[j]->rows()), 0.0f);
        got[j].assign(want[j].size(), -1.0f);
        matmul_bias(*ws[j], nullptr, x.data(), m, want[j].data(), pool);
        jobs.push_back({ws[j], nullptr, got[j].data()});
      }
      matmul_multi(jobs, x.data(), m, pool);
      for (size_t j = 0; j < ws.size(); ++j) EXPECT_EQ(got[j], want[j]) << isa_name(isa) << " m=" << m << " job " << j;
    }
  }
}

}  // namespace llmopt::kernels::test
