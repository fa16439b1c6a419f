#include "wait.h"

#include <chrono>
#include <cstdlib>
#include <thread>

#if defined(__linux__)
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#endif

namespace tessera::comm {
namespace {
std::atomic<uint64_t> generation{0};
/** The highest plan generation aborted by abortTagged. */
std::atomic<uint64_t> abortedTag{0};
}

void throwRankLost(const std::string& why) {
  throw CommError("TESSERA_ERR_RANK_LOST", why + "; check that rank's log, then run the request again");
}

uint64_t nowNs() {
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch()).count());
}

void abortAll() { generation.fetch_add(1, std::memory_order_seq_cst); }

uint64_t abortGeneration() { return generation.load(std::memory_order_relaxed); }

void abortTagged(uint64_t tag) {
  uint64_t seen = abortedTag.load(std::memory_order_relaxed);
  while (seen < tag && !abortedTag.compare_exchange_weak(seen, tag, std::memory_order_seq_cst)) {
  }
}

bool aborted(const WaitPolicy& policy) {
  if (abortGeneration() != policy.generation) return true;
  return policy.tag != 0 && abortedTag.load(std::memory_order_relaxed) >= policy.tag;
}

WaitPolicy WaitPolicy::fromEnvironment() {
  WaitPolicy policy{};
  const char* spin = std::getenv("TESSERA_COMM_SPIN_US");
  policy.spinNs = spin ? static_cast<uint64_t>(std::strtoull(spin, nullptr, 10)) * 1000 : 50'000;
  policy.adaptiveSpinNs = policy.spinNs;
  policy.generation = abortGeneration();
  return policy;
}

void futexWait(std::atomic<uint32_t>* word, uint32_t seen, uint64_t timeoutNs) {
#if defined(__linux__)
  timespec timeout{static_cast<time_t>(timeoutNs / 1'000'000'000), static_cast<long>(timeoutNs % 1'000'000'000)};
  // Not FUTEX_PRIVATE: the word lives in memory other processes map.
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAIT, seen, &timeout, nullptr, 0);
#else
  if (word->load(std::memory_order_acquire) == seen) std::this_thread::sleep_for(std::chrono::microseconds(timeoutNs > 200'000 ? 200 : timeoutNs / 1000));
#endif
}

void futexWakeAll(std::atomic<uint32_t>* word) {
#if defined(__linux__)
  syscall(SYS_futex, reinterpret_cast<uint32_t*>(word), FUTEX_WAKE, INT32_MAX, nullptr, nullptr, 0);
#else
  (void)word;
#endif
}

}  // namespace tessera::comm
