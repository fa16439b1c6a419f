// A group of ranks that runs collectives synchronously on the calling
// thread, in the canonical reduction order of DESIGN §4. Two kinds: over the
// shared-memory areas of ranks on one host (shm-group.cc) and over native
// sockets (socket-group.cc). Every member calls the same collectives in the
// same order.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <vector>

namespace tessera::comm {

/** Where a group's time went since it was made (read by the per-token breakdown). */
struct CommStats {
  uint64_t calls = 0;
  /** Inside collectives, in total. */
  uint64_t totalNs = 0;
  /** Of which blocked on peers (spinning or asleep). */
  uint64_t waitNs = 0;
  /** Bytes this rank wrote for peers. */
  uint64_t bytesSent = 0;
  /** Of the total, computing inside a collective (shared rows: the rows this rank claimed). */
  uint64_t computeNs = 0;
  /** Shared rows: rows of projections this rank computed (each for every token of its round). */
  uint64_t sharedRows = 0;
};

class Group {
 public:
  virtual ~Group() = default;
  /** values [count]: replaced on every member by the canonical-tree sum of all members' values. */
  virtual void allReduce(float* values, size_t count) = 0;
  /**
   * Every member's bytes in member order: `allocate(total)` says where they
   * go, `lengths` gets each member's length.
   */
  virtual void allGather(const uint8_t* mine, size_t length, const std::function<uint8_t*(size_t)>& allocate, std::vector<uint64_t>& lengths) = 0;
  /**
   * parts[j] (lengths[j] bytes) goes to member j; what each member sent here
   * arrives, in member order, where `allocate(total)` says, with its length
   * in `received`.
   */
  virtual void allToAll(const uint8_t* const* parts, const uint64_t* lengths, const std::function<uint8_t*(size_t)>& allocate, std::vector<uint64_t>& received) = 0;
  /**
   * A buffer for the partial of the next allReduce in memory the peers read
   * directly (no copy in), or nullptr. The sum stays there; it is valid, and
   * must only be read, until the collective after the next.
   */
  virtual float* partialBuffer(size_t count) { (void)count; return nullptr; }
  /** Member count and this rank's index among them. */
  virtual int size() const = 0;
  virtual int index() const = 0;
  CommStats stats;
};

/** First element of chunk i when `length` elements are cut into `count` near-equal chunks (reduction-tree.ts). */
inline size_t chunkStart(size_t length, size_t count, size_t i) { return length * i / count; }

/** Adds one call's time to `stats` when it goes out of scope. */
class CallTimer {
 public:
  CallTimer(CommStats& stats, uint64_t startNs) : stats_(stats), start_(startNs) {}
  ~CallTimer();
 private:
  CommStats& stats_;
  uint64_t start_;
};

}  // namespace tessera::comm
