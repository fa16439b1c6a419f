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

// state_: the job's generation in the high 32 bits, then a closed flag, the
// workers that joined (15 bits) and the workers that finished (16 bits).
constexpr uint64_t kClosed = uint64_t(1) << 31;
constexpr uint64_t kJoinedOne = uint64_t(1) << 16;
constexpr uint64_t kFinishedMask = 0xffff;

uint64_t generationOf(uint64_t state) { return state >> 32; }
uint64_t joinedOf(uint64_t state) { return (state >> 16) & 0x7fff; }

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
  const uint64_t start = generationOf(state_.load());
  for (int i = 1; i < threads; i++) workers_.emplace_back([this, start] { workerLoop(start); });
}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lock(sleepMutex_);
    stop_.store(true);
    state_.store((generationOf(state_.load()) + 1) << 32);
  }
  wake_.notify_all();
  for (std::thread& worker : workers_) worker.join();
}

void ThreadPool::drain() {
  for (;;) {
    const int index = next_.fetch_add(1, std::memory_order_acq_rel);
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
  state_.store((generationOf(state_.load()) + 1) << 32);  // seq_cst: pairs with the sleepers_ check in workerLoop
  if (sleepers_.load() > 0) {
    std::lock_guard<std::mutex> lock(sleepMutex_);
    wake_.notify_all();
  }
  drain();
  // Every task is taken. Close the job: a worker that has not joined yet (the
  // OS has it off its core) stays out instead of being waited for; only the
  // workers that joined, and may still run a task, are.
  const uint64_t joined = joinedOf(state_.fetch_or(kClosed));
  waitUntil([this, joined] { return (state_.load(std::memory_order_acquire) & kFinishedMask) == joined; });
  task_ = nullptr;
}

/** Joins the job of generation `generation` unless it is closed (or gone); true when joined. */
bool ThreadPool::join(uint64_t generation) {
  uint64_t state = state_.load();
  while (generationOf(state) == generation && (state & kClosed) == 0) {
    if (state_.compare_exchange_weak(state, state + kJoinedOne)) return true;
  }
  return false;
}

void ThreadPool::workerLoop(uint64_t seen) {
  for (;;) {
    auto spinStart = std::chrono::steady_clock::now();
    int spins = 0;
    while (generationOf(state_.load(std::memory_order_acquire)) == seen) {
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
      wake_.wait(lock, [&] { return generationOf(state_.load()) != seen; });
      sleepers_.fetch_sub(1);
      break;
    }
    seen = generationOf(state_.load(std::memory_order_acquire));
    if (stop_.load()) return;
    if (!join(seen)) continue;
    drain();
    state_.fetch_add(1, std::memory_order_acq_rel);  // finished
  }
}

}  // namespace tessera
