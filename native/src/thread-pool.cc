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
// An idle worker spins for a moment (the next op of a decode step comes
// within microseconds), then yields its core between checks, then sleeps.
// Spins are short and waits yield early because the kernel sometimes puts
// two of our threads on one core: a spinning thread must not keep the thread
// it waits for off that core.
constexpr auto kSpin = std::chrono::microseconds(5);
constexpr auto kYield = std::chrono::microseconds(2000);

/** Waits until `done()`: a few pauses, then yields. */
template <typename Done>
void waitUntil(Done done) {
  for (int i = 0; i < 64; i++) {
    if (done()) return;
    TESSERA_PAUSE();
  }
  while (!done()) std::this_thread::yield();
}
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
  waitUntil([this] { return busyWorkers_.load(std::memory_order_acquire) == 0; });
  task_ = nullptr;
}

void ThreadPool::workerLoop(uint64_t seen) {
  for (;;) {
    auto spinStart = std::chrono::steady_clock::now();
    int spins = 0;
    while (generation_.load(std::memory_order_acquire) == seen) {
      if (++spins % 16 != 0) {
        TESSERA_PAUSE();
        continue;
      }
      const auto idle = std::chrono::steady_clock::now() - spinStart;
      if (idle < kSpin) continue;
      if (idle < kYield) {
        std::this_thread::yield();
        continue;
      }
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
