// One rank's view of the shared-memory segments of its mesh: its own and
// every peer's. It moves Transport bytes through the rings (non-blocking;
// the TypeScript ShmTransport waits for the doorbell between attempts),
// exposes the areas and slots the shm collectives read and write, and waits
// — spin, then futex sleep on its own doorbell — with the checks of
// wait.h: abort, peers' liveness (closed flag, kill(pid, 0)) and the stall
// deadline.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "group.h"
#include "shm-segment.h"
#include "wait.h"

namespace tessera::comm {

class ShmMesh : public std::enable_shared_from_this<ShmMesh> {
 public:
  /** Creates this rank's segment at `path`. */
  ShmMesh(const std::string& path, int rank, int size, uint64_t ringBytes, uint64_t areaBytes);
  ~ShmMesh();

  /** Maps peer `peer`'s segment (its path came through the plan). */
  void attach(int peer, const std::string& path);
  int rank() const { return rank_; }
  int size() const { return size_; }
  const std::string& path() const { return path_; }
  WaitPolicy& policy() { return policy_; }

  /** Transport rings: write to `peer` / read from `peer` what fits or is there now; never block. */
  size_t ringWrite(int peer, const uint8_t* data, size_t length);
  size_t ringRead(int peer, uint8_t* into, size_t length);
  size_t ringReadable(int peer) const;
  /** Why `peer` is gone ("" while it lives): it closed its transport, or its process is dead. */
  std::string peerGone(int peer) const;
  /** The owner's doorbell now, and a sleep until it moves (or timeoutNs): for the TypeScript waiter thread. */
  uint32_t doorbell() const;
  void sleepOnDoorbell(uint32_t seen, uint64_t timeoutNs);
  /** Tells `peer` something changed for it. */
  void wake(int peer);
  /** Marks this rank closed and wakes its peers; the mappings stay until the last user lets go. */
  void close();

  /** Area half `half` of `rank`'s segment, and its size in bytes. */
  float* area(int rank, int half) const;
  uint64_t halfBytes() const { return halfBytes_; }
  GroupSlot& slot(int rank, int index) const;
  std::shared_ptr<Mapping> ownMapping() const { return segments_[rank_]; }

  /** Blocks until `ready()`; `peers` are checked for liveness; adds the time to `waitedNs`. */
  template <class Ready>
  void waitUntil(Ready ready, const std::vector<int>& peers, const char* what, uint64_t& waitedNs);

  /** Streams `count` frames of `length` bytes to (`sending`) and from `peer` through the Transport ring, blocking: the raw link figure of `bench comm`. */
  void stream(int peer, const uint8_t* frame, uint8_t* landing, size_t length, int count, bool sending, bool receiving);

 private:
  /** Where a segment's rings and area lie: read once and checked against its file, since its owner may rewrite the header later. */
  struct Layout {
    uint64_t ringsOffset = 0;
    uint64_t ringBytes = 0;
    uint64_t areaOffset = 0;
  };

  SegmentHeader* header(int rank) const { return segments_[rank]->header(); }
  /** Bytes in flight on a ring (head − tail); both indices live in shared memory, so more than the ring holds is TESSERA_ERR_PROTOCOL. */
  uint64_t inFlight(const RingHeader* r, uint64_t capacity, int peer) const;
  RingHeader* ring(int owner, int sender) const;
  uint8_t* ringData(int owner, int sender) const;
  std::string firstGone(const std::vector<int>& peers) const;

  std::string path_;
  int rank_;
  int size_;
  uint64_t halfBytes_;
  bool unlinked_ = false;
  WaitPolicy policy_;
  /** [size]: every rank's segment; own at rank_. */
  std::vector<std::shared_ptr<Mapping>> segments_;
  /** [size]: every mapped segment's checked layout. */
  std::vector<Layout> layouts_;
};

template <class Ready>
void ShmMesh::waitUntil(Ready ready, const std::vector<int>& peers, const char* what, uint64_t& waitedNs) {
  if (ready()) return;
  WaitClock clock(policy_);
  SegmentHeader* own = header(rank_);
  for (;;) {
    if (clock.spinning()) {
      for (int i = 0; i < 32; i++) cpuRelax();
      if (ready()) break;
      continue;
    }
    const uint32_t seen = own->doorbell.load(std::memory_order_acquire);
    if (ready()) break;
    // Announce the sleep, then look again: a waker bumps the doorbell before it reads `sleepers`.
    own->sleepers.fetch_add(1, std::memory_order_seq_cst);
    if (!ready()) futexWait(&own->doorbell, seen, policy_.sliceNs);
    own->sleepers.fetch_sub(1, std::memory_order_seq_cst);
    if (ready()) break;
    clock.check([&] { return firstGone(peers); }, what);
  }
  const uint64_t waited = clock.waitedNs();
  policy_.learn(waited);
  waitedNs += waited;
}

}  // namespace tessera::comm
