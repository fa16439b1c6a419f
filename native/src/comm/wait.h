// Blocking waits of the native transports and collectives (PLAN contract 3):
// every wait spins a little, then sleeps in short slices, and between slices
// checks the process-wide abort, the peers' liveness and an optional stall
// deadline, ending with TESSERA_ERR_RANK_LOST instead of hanging.
#pragma once
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <stdexcept>
#include <string>

namespace tessera::comm {

/** A failure of a transport or collective; `code` is a TESSERA_ERR_* code the binding passes to JS. */
class CommError : public std::runtime_error {
 public:
  CommError(const char* errorCode, const std::string& message) : std::runtime_error(message), code(errorCode) {}
  const char* code;
};

[[noreturn]] void throwRankLost(const std::string& why);

struct WaitPolicy;
/** Whether the waits of a mesh with `policy` must fail: abortAll() since it was made, or abortTagged() of its tag. */
bool aborted(const WaitPolicy& policy);

/** Monotonic nanoseconds. */
uint64_t nowNs();

/** Sets the abort: every wait of a mesh made before this call fails from now on (meshes made later do not). */
void abortAll();
/** The abort generation a mesh records when it is made; a wait compares it with the current one. */
uint64_t abortGeneration();
/**
 * Aborts the meshes tagged with a plan generation up to `tag` (set by
 * WaitPolicy::tag), made before or after this call; others are untouched.
 * A rank aborts its lost plan this way, so an abort that arrives late (the
 * rank already set up the next plan) cannot end the next plan's waits.
 */
void abortTagged(uint64_t tag);

/** Tuning of one mesh's waits. */
struct WaitPolicy {
  /** Busy-wait at most this long before sleeping (TESSERA_COMM_SPIN_US, default 50 µs). */
  uint64_t spinNs;
  /**
   * How long waits spin now: doubled after a wait that ended within spinNs
   * (spinning would have caught it), halved after a longer one. On a busy
   * machine, where a peer is often off its core for milliseconds, spinning
   * only takes the core from it, so the budget falls towards 0 and waits
   * sleep at once; on idle cores it rises back to spinNs.
   */
  uint64_t adaptiveSpinNs;
  /** Longest single sleep, so abort and liveness are seen within it. */
  uint64_t sliceNs = 1'000'000;
  /** Check the peers' liveness this often while sleeping. */
  uint64_t livenessNs = 4'000'000;
  /** Fail a wait that sees no progress for this long; 0 = wait as long as the peers live. */
  uint64_t stallNs = 0;
  /** abortGeneration() when the mesh was made. */
  uint64_t generation;
  /** The plan generation this mesh serves (0: untagged, only abortAll ends its waits). */
  uint64_t tag = 0;

  static WaitPolicy fromEnvironment();
  /**
   * Adapts adaptiveSpinNs to a wait that took `waitedNs`. It never falls
   * below spinNs / 16: a wait that sleeps at once lasts at least a wake-up
   * (tens of µs on a virtual machine), longer than spinNs, so at 0 the
   * budget could never see a short wait again and every later wait would
   * sleep, even once the machine is idle.
   */
  void learn(uint64_t waitedNs) {
    adaptiveSpinNs = waitedNs <= spinNs ? std::min(spinNs, adaptiveSpinNs * 2 + 1000) : std::max(spinNs / 16, adaptiveSpinNs / 2);
  }
};

/**
 * Sleeps on a 32-bit word shared between processes until it differs from
 * `seen` or `timeoutNs` passes (Linux futex; elsewhere a short sleep).
 */
void futexWait(std::atomic<uint32_t>* word, uint32_t seen, uint64_t timeoutNs);
void futexWakeAll(std::atomic<uint32_t>* word);

/** A CPU hint inside spin loops. */
inline void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

/**
 * The time accounting of one wait: construct when a wait starts, call
 * `check` between sleeps (it throws on abort, stall or a lost peer via
 * `lost`), read `waitedNs` at the end.
 */
class WaitClock {
 public:
  explicit WaitClock(const WaitPolicy& policy) : policy_(policy), start_(nowNs()), lastLiveness_(start_), spinNs_(probing(start_) ? policy.spinNs : policy.adaptiveSpinNs) {}
  bool spinning() const { return nowNs() - start_ < spinNs_; }
  /** Throws when aborted or stalled; calls `peersGone` every livenessNs and throws with its reason if it returns one. */
  template <class PeersGone>
  void check(PeersGone peersGone, const char* what) {
    const uint64_t now = nowNs();
    if (aborted(policy_)) throw CommError("TESSERA_ERR_RANK_LOST", std::string("collectives were aborted while ") + what);
    if (policy_.stallNs != 0 && now - start_ > policy_.stallNs) {
      throw CommError("TESSERA_ERR_RANK_LOST", std::string("no progress for ") + std::to_string(policy_.stallNs / 1'000'000) + " ms while " + what + "; a peer is stuck or unreachable");
    }
    if (now - lastLiveness_ >= policy_.livenessNs) {
      lastLiveness_ = now;
      const std::string gone = peersGone();
      if (!gone.empty()) throwRankLost(gone + " while " + what);
    }
  }
  uint64_t waitedNs() const { return nowNs() - start_; }
  const WaitPolicy& policy() const { return policy_; }

 private:
  const WaitPolicy& policy_;
  /**
   * Waits that start in the first 2^20 ns (about 1 ms) of every 2^24 (about
   * 17 ms) spin the whole spinNs, whatever the budget. Once every rank of a
   * mesh sleeps at once, each one's waits include the other's wake-up and
   * never look short, so the budget alone would stay low on an idle machine;
   * the clock is the same in every process, so the ranks probe together.
   */
  static bool probing(uint64_t now) { return (now >> 20) % 16 == 0; }

  uint64_t start_;
  uint64_t lastLiveness_;
  /** How long this wait spins before it sleeps. */
  uint64_t spinNs_;
};

}  // namespace tessera::comm
