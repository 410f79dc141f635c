// Core: Status/Result, dtype table, thread pool partitioning, mapped files.
#include <gtest/gtest.h>

#include <chrono>
#include <cstring>
#include <thread>

#include <algorithm>
#include <atomic>
#include <vector>

#include "core/dtype.h"
#include "core/mmap_file.h"
#include "core/status.h"
#include "core/thread_pool.h"
#include "test_util.h"

namespace llmopt {
namespace {

Result<int> parse_positive(int x) {
  if (x <= 0) return error("not positive: " + std::to_string(x));
  return x;
}

Status use_macros(int x, int* out) {
  LLMOPT_ASSIGN_OR_RETURN(int v, parse_positive(x));
  *out = v * 2;
  return ok_status();
}

TEST(CoreStatus, ResultCarriesValueOrError) {
  auto good = parse_positive(3);
  ASSERT_TRUE(good.ok());
  EXPECT_EQ(*good, 3);
  auto bad = parse_positive(-1);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().message(), "not positive: -1");
  EXPECT_EQ(bad.status().with_context("f.gguf").message(), "f.gguf: not positive: -1");
  int out = 0;
  EXPECT_TRUE(use_macros(5, &out).ok());
  EXPECT_EQ(out, 10);
  EXPECT_FALSE(use_macros(0, &out).ok());
}

TEST(CoreDtype, TableMatchesGgml) {
  // Block sizes and bytes from the GGUF specification.
  EXPECT_EQ(dtype_info(DType::kQ8_0).type_size, 34u);
  EXPECT_EQ(dtype_info(DType::kQ4_K).type_size, 144u);
  EXPECT_EQ(dtype_info(DType::kQ6_K).type_size, 210u);
  EXPECT_EQ(dtype_info(DType::kQ5_K).block_size, 256);
  EXPECT_FALSE(dtype_info(uint32_t{4}).has_value());  // removed Q4_2
  EXPECT_FALSE(dtype_info(uint32_t{1000}).has_value());
  EXPECT_EQ(*dtype_from_name("BF16"), DType::kBF16);
  EXPECT_EQ(*dtype_from_name("q4_k"), DType::kQ4_K);
  EXPECT_FALSE(dtype_from_name("q9_9").has_value());
  EXPECT_EQ(*dtype_row_bytes(DType::kQ4_0, 64), 36u);
  EXPECT_FALSE(dtype_row_bytes(DType::kQ4_0, 33).has_value());
}

TEST(CoreThreadPool, PartitionCoversRangeExactlyOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 7, 100, 1001}) {
      std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
      for (int rep = 0; rep < 3; ++rep) {
        pool.parallel_for(n, [&](int64_t b, int64_t e, int t) {
          EXPECT_LT(t, threads);
          for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
        });
      }
      for (auto& h : hits) EXPECT_EQ(h.load(), 3);
    }
  }
}

// Chunks of `grain` handed to whichever thread is free: every index exactly once, each call's range
// within one chunk, and the chunks as the grain cuts them. Run under ThreadSanitizer by `make test-tsan`.
TEST(CoreThreadPool, DynamicChunksCoverRangeExactlyOnce) {
  for (int threads : {1, 2, 3, 8}) {
    ThreadPool pool(threads);
    for (int64_t n : {0, 1, 2, 7, 100, 1001}) {
      for (int64_t grain : {0, 1, 3, 64, 5000}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        for (int rep = 0; rep < 3; ++rep) {
          pool.parallel_for_dynamic(n, grain, [&](int64_t b, int64_t e, int t) {
            EXPECT_LT(t, threads);
            const int64_t g = std::max<int64_t>(grain, 1);
            if (threads > 1 && (n + g - 1) / g > 1) {
              EXPECT_EQ(b % g, 0) << "n=" << n << " grain=" << grain;
              EXPECT_EQ(e, std::min(n, b + g)) << "n=" << n << " grain=" << grain;
            }
            for (int64_t i = b; i < e; ++i) hits[static_cast<size_t>(i)]++;
          });
        }
        for (auto& h : hits) EXPECT_EQ(h.load(), 3) << "n=" << n << " grain=" << grain;
      }
    }
  }
}

// Thousands of back-to-back jobs (the spinning hand-off) and jobs spaced out past the spin window
// (the sleeping hand-off): every worker's plain writes are visible to the caller when the job returns.
// Run under ThreadSanitizer by `make test-tsan`.
TEST(CoreThreadPool, HandOffPublishesResultsSpinningAndSleeping) {
  for (int threads : {2, 3}) {
    ThreadPool pool(threads);
    std::vector<int64_t> slot(static_cast<size_t>(threads), 0);
    for (int job = 0; job < 3000; ++job) {
      pool.run_on_all([&](int t) { slot[static_cast<size_t>(t)] += job; });
      if (job % 1000 == 999) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    const int64_t want = int64_t{2999} * 3000 / 2;
    for (int t = 0; t < threads; ++t) EXPECT_EQ(slot[static_cast<size_t>(t)], want) << "thread " << t;
  }
}

TEST(CoreThreadPool, PhysicalCoresPositive) { EXPECT_GE(physical_core_count(), 1); }

TEST(CoreMappedFile, MissingFileAndDirectoryAreErrors) {
  auto missing = MappedFile::open("/nonexistent/model.gguf");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("/nonexistent/model.gguf"), std::string::npos);
  std::string dir = test::temp_dir();
  auto d = MappedFile::open(dir);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("not a regular file"), std::string::npos);
  test::write_file(dir + "/x.bin", "hello");
  auto f = MappedFile::open(dir + "/x.bin");
  ASSERT_TRUE(f.ok());
  EXPECT_EQ((*f)->size(), 5u);
  EXPECT_EQ((*f)->data()[0], 'h');
}

}  // namespace
TEST(CoreMappedFile, ReadIntoMemoryGivesTheFileBytes) {
  std::string dir = test::temp_dir();
  std::string bytes(3 * 4096 + 17, '\0');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>((i * 131 + 7) & 0xff);
  test::write_file(dir + "/w.bin", bytes);
  auto mapped = MappedFile::open(dir + "/w.bin", FileLoad::kMap);
  auto read = MappedFile::open(dir + "/w.bin", FileLoad::kRead);
  ASSERT_TRUE(mapped.ok() && read.ok());
  ASSERT_EQ((*read)->size(), bytes.size());
  EXPECT_EQ(std::memcmp((*read)->data(), bytes.data(), bytes.size()), 0);
  EXPECT_EQ(std::memcmp((*read)->data(), (*mapped)->data(), bytes.size()), 0);
  // The same errors as mapping.
  auto missing = MappedFile::open(dir + "/none.bin", FileLoad::kRead);
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("cannot open"), std::string::npos);
  auto d = MappedFile::open(dir, FileLoad::kRead);
  ASSERT_FALSE(d.ok());
  EXPECT_NE(d.status().message().find("not a regular file"), std::string::npos);
  test::write_file(dir + "/empty.bin", "");
  auto empty = MappedFile::open(dir + "/empty.bin", FileLoad::kRead);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ((*empty)->size(), 0u);
  // Files larger than 90% of this are mapped even when asked to be read.
  EXPECT_GT(available_memory_bytes(), size_t{1} << 20);
}

}  // namespace llmopt
