// Collectives of ranks on one host, straight through shared memory: each
// member writes its data into its own segment's area (or computes it there:
// partialBuffer), and the peers read it in place — no ring, no second copy.
//
// All-reduce, round r (area half r % 2):
//   1. the partial is in my area (or, for an ordinary array, the peers'
//      chunks of it are); publish phase 2r+1; wait for every peer's 2r+1;
//   2. sum my chunk of every member's data in the canonical tree order and
//      write it into that chunk of every member's area; publish 2r+2; wait
//      for every peer's 2r+2: my area holds the whole sum.
// Halves alternate, so a half is written again only in round r+2, by when
// every peer has entered round r+1 and so finished reading round r. An
// ordinary array goes through in pieces of 1 MiB, so what one step writes
// the next reads from cache.
#pragma once
#include <functional>
#include <memory>
#include <vector>

#include "group.h"
#include "shm-mesh.h"

namespace tessera::comm {

/** Computes rows [begin, end) of tokens [t0, t1) into dst (row r of token t at dst[(t - t0) * stride + (r - begin)]). */
using RowCompute = std::function<void(int t0, int t1, int64_t begin, int64_t end, float* dst, int64_t stride)>;

class ShmGroup : public Group {
 public:
  /** `members`: mesh ranks in group order (this rank among them); `slot`: which counter of the segments this group uses. */
  ShmGroup(std::shared_ptr<ShmMesh> mesh, std::vector<int> members, int slot);

  void allReduce(float* values, size_t count) override;
  void allGather(const uint8_t* mine, size_t length, const std::function<uint8_t*(size_t)>& allocate, std::vector<uint64_t>& lengths) override;
  void allToAll(const uint8_t* const* parts, const uint64_t* lengths, const std::function<uint8_t*(size_t)>& allocate, std::vector<uint64_t>& received) override;
  float* partialBuffer(size_t count) override;
  /**
   * A projection whose output rows [0, fullRows) two members share as they
   * go (row-sharing.cc): member 0 claims chunks of `chunkRows` from the low
   * end, member 1 from the high end, each only within the rows it holds
   * [heldBegin, heldEnd), so the faster one takes more; `compute(t0, t1,
   * begin, end, dst, stride)` writes rows [begin, end) of tokens [t0, t1)
   * at dst[(t - t0) * stride + (r - begin)]. Every member gets all rows of
   * every token in out [numTokens, fullRows]. A row is computed whole by
   * one member, so the bits do not depend on who computed it.
   */
  void shareRows(int64_t fullRows, int64_t chunkRows, int64_t heldBegin, int64_t heldEnd, int numTokens, const RowCompute& compute, float* out);
  int size() const override { return static_cast<int>(members_.size()); }
  int index() const override { return index_; }
  /** Which half the next round uses (the JS views of the two halves are made once). */
  int nextHalf() const { return static_cast<int>(round_ % 2); }

 private:
  /** How a round's data reaches the area: already there (partialBuffer), the whole piece by memmove, or only the chunks the peers read. */
  enum class Staging { kRegistered, kWhole, kDirect };

  void reduceRound(float* values, size_t length, Staging staging);
  /** One round of shareRows over tokens [t0, t1) (they fit in an area half). */
  void shareRound(int64_t fullRows, int64_t chunkRows, int64_t heldBegin, int64_t heldEnd, int t0, int t1, const RowCompute& compute, float* out);
  /** Whether values[0, count) shares bytes with this rank's area. */
  bool overlapsArea(const float* values, size_t count) const;
  void publish(uint64_t phase);
  void waitForPeers(uint64_t phase, const char* what);
  /** Starts a round: its number, and this rank's half of it. */
  uint64_t beginRound();

  std::shared_ptr<ShmMesh> mesh_;
  std::vector<int> members_;
  std::vector<int> peers_;
  int index_;
  int slot_;
  int rank_;
  uint64_t round_ = 0;
};

}  // namespace tessera::comm
