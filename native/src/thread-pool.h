// A persistent pool of worker threads; the calling thread works too. A job is
// `count` independent tasks handed out in order from a shared counter. Which
// thread runs a task never changes its result: kernels split output rows (or
// heads, or tokens), never a reduction.
//
// Workers spin briefly after a job (decode issues ops back to back, and a
// futex wake costs more than a small op), then yield, then sleep. A job does
// not wait for a worker the OS keeps off its core: once the caller has taken
// the last task, workers that have not joined stay out of that job.
#pragma once
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace tessera {

class ThreadPool {
 public:
  /** `threads` counts the caller: 1 means no workers. */
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int threads() const { return static_cast<int>(workers_.size()) + 1; }

  /** Runs task(0..count-1) over the pool and returns when all are done. */
  void run(int count, const std::function<void(int)>& task);

 private:
  void workerLoop(uint64_t seen);
  bool join(uint64_t generation);
  void drain();

  std::vector<std::thread> workers_;
  std::mutex runMutex_;  // one job at a time (several JS threads may share the pool)
  std::mutex sleepMutex_;
  std::condition_variable wake_;
  /** Generation of the current job, closed flag, workers joined and finished (thread-pool.cc). */
  std::atomic<uint64_t> state_{0};
  std::atomic<int> sleepers_{0};
  std::atomic<int> next_{0};
  std::atomic<bool> stop_{false};
  int count_ = 0;
  const std::function<void(int)>* task_ = nullptr;
};

}  // namespace tessera
