#include "thread-pool.h"

#include <chrono>

#if defined(__x86_64__) || defined(_M_X64)
#include <immintrin.h>
#define TESSERA_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define TESSERA_PAUSE() asm volatile("yield")
#else
#define TESSERA_PAUSE() ((void)0)
#endif

namespace tessera {

namespace {
// How long an idle worker keeps spinning before it sleeps.
constexpr auto kSpin = std::chrono::microseconds(1000);
}  // namespace

ThreadPool::ThreadPool(int threads) {
  // A worker waits for generations after this one; read here, not on the new
  // thread, or a job posted before the thread starts would never be seen.
  const uint64_t start = generation_.load();
  for (int i = 1; i < threads; i++) workers_.emplace_back([this, start] { workerLoop(start); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(sleepMutex_);
    stop_.store(true);
    generation_.fetch_add(1);
  }
  wake_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

void ThreadPool::drain() {
  for (;;) {
    const int index = next_.fetch_add(1, std::memory_order_relaxed);
    if (index >= count_) return;
    (*task_)(index);
  }
}

void ThreadPool::run(int count, const std::function<void(int)>& task) {
  if (count <= 0) return;
  std::lock_guard<std::mutex> runLock(runMutex_);
  if (workers_.empty() || count == 1) {
    for (int i = 0; i < count; i++) task(i);
    return;
  }
  count_ = count;
  task_ = &task;
  next_.store(0, std::memory_order_relaxed);
  busyWorkers_.store(static_cast<int>(workers_.size()));
  generation_.fetch_add(1);  // seq_cst: pairs with the sleepers_ check in workerLoop
  if (sleepers_.load() > 0) {
    std::lock_guard<std::mutex> lock(sleepMutex_);
    wake_.notify_all();
  }
  drain();
  while (busyWorkers_.load(std::memory_order_acquire) > 0) TESSERA_PAUSE();
  task_ = nullptr;
}

void ThreadPool::workerLoop(uint64_t seen) {
  for (;;) {
    auto spinStart = std::chrono::steady_clock::now();
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen) {
      TESSERA_PAUSE();
      if (++spins % 256 != 0 || std::chrono::steady_clock::now() - spinStart < kSpin) continue;
      std::unique_lock<std::mutex> lock(sleepMutex_);
      sleepers_.fetch_add(1);
      wake_.wait(lock, [&] { return generation_.load() != seen; });
      sleepers_.fetch_sub(1);
      break;
    }
    seen = generation_.load(std::memory_order_acquire);
    if (stop_.load()) return;
    drain();
    busyWorkers_.fetch_sub(1, std::memory_order_release);
  }
}

}  // namespace tessera
