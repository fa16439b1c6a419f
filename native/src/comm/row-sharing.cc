// Shared rows: two ranks on one host split a projection's output rows as
// they compute, instead of by a fixed cut, so a rank on a slower core (a
// virtual machine's cores change speed by tens of per cent from second to
// second) takes fewer rows and neither waits long for the other. Each rank
// holds the weight rows of its half plus an overlap; within the overlap the
// rows go to whoever gets there first.
//
// Round r (area half r % 2), tokens [t0, t1):
//   1. the first member to arrive sets the claim word of half r%2 to
//      (r+1, 0, chunks); member 0 then takes runs of chunks from the low
//      end, member 1 from the high end (an eighth of what is left, so the
//      last claims are short), one compare-and-swap each, within the rows
//      it holds; each writes its rows into its own area half;
//   2. publish 2r+1, wait for the peer's 2r+1: every chunk is computed, and
//      the two ends met at chunk x;
//   3. copy rows [0, x) from member 0's area and [x, end) from member 1's
//      into `out`, publish 2r+2 (nobody waits for it, as in allGather).
// The claim word of half r%2 is set again in round r+2, which neither
// member starts before both have passed step 2 of round r+1.
#include <algorithm>
#include <cstring>
#include <string>

#include "shm-group.h"

namespace tessera::comm {
namespace {

constexpr uint64_t kChunkMask = 0xffff;

uint64_t claimWord(uint64_t round, uint64_t low, uint64_t high) { return ((round + 1) << 32) | (low << 16) | high; }
uint64_t roundOf(uint64_t word) { return word >> 32; }
uint64_t lowOf(uint64_t word) { return (word >> 16) & kChunkMask; }
uint64_t highOf(uint64_t word) { return word & kChunkMask; }

}  // namespace

void ShmGroup::shareRows(int64_t fullRows, int64_t chunkRows, int64_t heldBegin, int64_t heldEnd, int numTokens, const RowCompute& compute, float* out) {
  CallTimer timer(stats, nowNs());
  if (members_.size() != 2) throw CommError("TESSERA_ERR_INVALID_ARGUMENT", "shared rows need a group of two members; this one has " + std::to_string(members_.size()));
  if (fullRows <= 0 || chunkRows <= 0 || (fullRows + chunkRows - 1) / chunkRows > static_cast<int64_t>(kChunkMask)) {
    throw CommError("TESSERA_ERR_INVALID_ARGUMENT", "shared rows: " + std::to_string(fullRows) + " rows in chunks of " + std::to_string(chunkRows) + " do not fit the claim word");
  }
  if (heldBegin < 0 || heldEnd > fullRows || heldBegin >= heldEnd || (index_ == 0 && heldBegin != 0) || (index_ == 1 && heldEnd != fullRows)) {
    throw CommError("TESSERA_ERR_INVALID_ARGUMENT", "shared rows: member " + std::to_string(index_) + " holds rows [" + std::to_string(heldBegin) + ", " + std::to_string(heldEnd) + ") of " + std::to_string(fullRows) + "; member 0 must hold the first rows and member 1 the last");
  }
  const int64_t halfFloats = static_cast<int64_t>(mesh_->halfBytes() / sizeof(float));
  if (fullRows > halfFloats) throw CommError("TESSERA_ERR_INVALID_ARGUMENT", "shared rows: one token's " + std::to_string(fullRows) + " rows exceed the shared area; raise TESSERA_SHM_AREA_MIB");
  const int perRound = static_cast<int>(std::min<int64_t>(halfFloats / fullRows, numTokens));
  for (int t0 = 0; t0 < numTokens; t0 += perRound) shareRound(fullRows, chunkRows, heldBegin, heldEnd, t0, std::min(numTokens, t0 + perRound), compute, out);
}

void ShmGroup::shareRound(int64_t fullRows, int64_t chunkRows, int64_t heldBegin, int64_t heldEnd, int t0, int t1, const RowCompute& compute, float* out) {
  const uint64_t round = beginRound();
  const int half = static_cast<int>(round % 2);
  const uint64_t chunks = static_cast<uint64_t>((fullRows + chunkRows - 1) / chunkRows);
  std::atomic<uint64_t>& word = mesh_->slot(members_[0], slot_).claims[half];
  uint64_t seen = word.load(std::memory_order_acquire);
  while (roundOf(seen) != round + 1 && !word.compare_exchange_weak(seen, claimWord(round, 0, chunks), std::memory_order_acq_rel)) {
  }
  float* mine = mesh_->area(rank_, half);
  const int64_t tokens = t1 - t0;
  // The whole chunks held here: [heldFirst, heldLast).
  const uint64_t heldFirst = static_cast<uint64_t>((heldBegin + chunkRows - 1) / chunkRows);
  const uint64_t heldLast = heldEnd == fullRows ? chunks : static_cast<uint64_t>(heldEnd / chunkRows);
  const uint64_t computeStart = nowNs();
  for (;;) {
    seen = word.load(std::memory_order_acquire);
    const uint64_t low = lowOf(seen);
    const uint64_t high = highOf(seen);
    if (low >= high) break;
    // Guided sizes: an eighth of what is left (at least one chunk), so claims start long (the weights stream in long
    // runs) and end short (the member that finishes first waits for at most one short claim of the other's).
    uint64_t take = std::max<uint64_t>(1, (high - low) / 8);
    uint64_t first = index_ == 0 ? low : high - take;
    // Only rows held here: the peer computes the rest.
    if (index_ == 0 && first + take > heldLast) take = heldLast > first ? heldLast - first : 0;
    if (index_ == 1 && first < heldFirst) {
      take = high > heldFirst ? high - heldFirst : 0;
      first = high - take;
    }
    if (take == 0) break;
    const uint64_t next = index_ == 0 ? claimWord(round, low + take, high) : claimWord(round, low, high - take);
    if (!word.compare_exchange_weak(seen, next, std::memory_order_acq_rel)) continue;
    const int64_t begin = static_cast<int64_t>(first) * chunkRows;
    const int64_t end = std::min(fullRows, static_cast<int64_t>(first + take) * chunkRows);
    compute(t0, t1, begin, end, mine + begin, fullRows);
    stats.sharedRows += static_cast<uint64_t>(end - begin);
  }
  stats.computeNs += nowNs() - computeStart;
  publish(2 * round + 1);
  waitForPeers(2 * round + 1, "waiting for the peer's shared rows");
  const uint64_t final = word.load(std::memory_order_acquire);
  if (lowOf(final) != highOf(final)) throw CommError("TESSERA_ERR_PROTOCOL", "shared rows: chunks [" + std::to_string(lowOf(final)) + ", " + std::to_string(highOf(final)) + ") lie outside the rows both members hold");
  const int64_t meet = std::min(fullRows, static_cast<int64_t>(lowOf(final)) * chunkRows);
  const float* first = mesh_->area(members_[0], half);
  const float* second = mesh_->area(members_[1], half);
  for (int64_t t = 0; t < tokens; t++) {
    float* row = out + (t0 + t) * fullRows;
    std::memcpy(row, first + t * fullRows, static_cast<size_t>(meet) * sizeof(float));
    std::memcpy(row + meet, second + t * fullRows + meet, static_cast<size_t>(fullRows - meet) * sizeof(float));
  }
  stats.bytesSent += static_cast<uint64_t>(tokens) * static_cast<uint64_t>(index_ == 0 ? meet : fullRows - meet) * sizeof(float);
  publish(2 * round + 2);
}

}  // namespace tessera::comm
