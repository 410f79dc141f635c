// A persistent pool of worker threads used by matmuls and attention.
// parallel_for splits [0, n) into contiguous chunks, one per thread, and blocks until all are done;
// parallel_for_dynamic hands out smaller chunks to whichever thread is free.
// The calling thread takes part as worker 0, so a pool of 1 runs everything inline.
// Hand-off is spin-then-sleep: between jobs a worker spins on an atomic generation counter for a
// short while (a forward pass issues hundreds of jobs, microseconds apart) and only then sleeps on a
// condition variable; the caller waits for the workers the same way.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace llmopt {

class ThreadPool {
 public:
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int n_threads() const { return n_threads_; }
  // fn(begin, end, thread_index) over a partition of [0, n). Not re-entrant.
  void parallel_for(int64_t n, const std::function<void(int64_t, int64_t, int)>& fn);
  // fn(begin, end, thread_index) over [0, n) in chunks of `grain` elements, each taken by whichever
  // thread is free next: a thread that the machine slows down does less of the work instead of holding
  // up the others. Which thread runs a chunk is not fixed, so fn must not depend on it for results.
  void parallel_for_dynamic(int64_t n, int64_t grain, const std::function<void(int64_t, int64_t, int)>& fn);
  // Runs fn(thread_index) once on every thread.
  void run_on_all(const std::function<void(int)>& fn);

 private:
  void worker_loop(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_start_;
  std::condition_variable cv_done_;
  std::atomic<const std::function<void(int)>*> job_{nullptr};
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
};

// Number of physical cores (falls back to logical CPUs when topology is unknown).
int physical_core_count();

}  // namespace llmopt
