// A rank's shared-memory segment: a file in /dev/shm (or another folder)
// mapped by every rank of its mesh on this host. It holds
//   [header page] the owner's pid, doorbell (a futex word every event for
//                 the owner bumps), closed flag, and the collective slots;
//   [rings]       one byte ring per sending rank, for the Transport;
//   [area]        two halves the owner's collectives alternate between, read
//                 directly by its group's peers.
// The file is unlinked once every peer has mapped it (or at close), so a
// crash leaves at most the files of a mesh that never finished starting;
// sweepStaleSegments removes those of dead processes.
#pragma once
#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

namespace tessera::comm {

constexpr uint64_t kSegmentMagic = 0x31617373'65737465ULL;  // "tessera1" little-endian-ish tag
constexpr uint32_t kSegmentVersion = 2;
constexpr int kMaxSlots = 4;
constexpr size_t kPathBytes = 200;

/** One group's progress counter on one rank; peers wait for it. */
struct alignas(64) GroupSlot {
  /** 2r+1 once round r's data is in this rank's area half r%2; 2r+2 once its sum chunk is. */
  std::atomic<uint64_t> phase;
  /** All-gather: this rank's part length in round-r half r%2 ([2] like the area halves). */
  uint64_t partBytes[2];
  /**
   * Shared rows (row-sharing.cc), in the first member's slot only: round r's
   * claims in [r%2], (r+1) in the high 32 bits, the next unclaimed chunk from
   * the low end and one past the last from the high end in 16 bits each. Its
   * own line: every member writes it.
   */
  alignas(64) std::atomic<uint64_t> claims[2];
};

/** A 64-bit index alone on its cache line (ring head and tail are written by different processes). */
struct alignas(64) RingIndex {
  std::atomic<uint64_t> value;
};

struct RingHeader {
  /** Bytes written so far (by the sender). */
  RingIndex head;
  /** Bytes read so far (by the owner). */
  RingIndex tail;
};

struct SegmentHeader {
  uint64_t magic;
  uint32_t version;
  uint32_t size;
  uint32_t rank;
  int32_t pid;
  uint64_t ringBytes;
  uint64_t areaBytes;
  uint64_t ringsOffset;
  uint64_t areaOffset;
  uint64_t totalBytes;
  char path[kPathBytes];
  /** Bumped for every event that concerns the owner: data in, space freed, a peer's phase, a close. */
  alignas(64) std::atomic<uint32_t> doorbell;
  /** Threads of the owner asleep on the doorbell; wakers skip the syscall when 0. */
  std::atomic<uint32_t> sleepers;
  alignas(64) std::atomic<uint32_t> closed;
  /** Peers that have mapped this segment; the last one unlinks the file. */
  std::atomic<uint32_t> attached;
  GroupSlot slots[kMaxSlots];
};

/** An mmap'd file, unmapped when the last owner lets go (JS views of the area hold one too). */
class Mapping {
 public:
  Mapping(void* base, size_t bytes) : base_(base), bytes_(bytes) {}
  ~Mapping();
  Mapping(const Mapping&) = delete;
  Mapping& operator=(const Mapping&) = delete;
  SegmentHeader* header() const { return static_cast<SegmentHeader*>(base_); }
  uint8_t* bytes() const { return static_cast<uint8_t*>(base_); }
  size_t length() const { return bytes_; }

 private:
  void* base_;
  size_t bytes_;
};

/** Creates and maps a new segment at `path` for `rank` of a mesh of `size`. */
std::shared_ptr<Mapping> createSegment(const std::string& path, int rank, int size, uint64_t ringBytes, uint64_t areaBytes);
/** Maps a peer's segment and checks it is one of a mesh of `size` owned by `rank`. */
std::shared_ptr<Mapping> attachSegment(const std::string& path, int rank, int size);
/** Unlinks tessera segments in `dir` whose owner process is gone; returns how many. */
int sweepStaleSegments(const std::string& dir);

}  // namespace tessera::comm
