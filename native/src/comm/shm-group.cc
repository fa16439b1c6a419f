#include "shm-group.h"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <string>

#include "tree-sum.h"

namespace tessera::comm {

constexpr int kMaxMembers = 64;
/** The longest part a peer may announce (the socket plane bounds its messages the same way). */
constexpr uint64_t kMaxPartBytes = uint64_t(1) << 30;
/** All-reduce of an ordinary array goes in pieces of this many bytes (per round, all members' chunks together). */
constexpr size_t kPieceBytes = size_t(1) << 20;

namespace {

/** A length a peer wrote into shared memory, checked before it sizes an allocation or a copy. */
uint64_t boundedPart(uint64_t bytes, int peer, const char* what) {
  if (bytes > kMaxPartBytes) throw CommError("TESSERA_ERR_FRAME_TOO_LARGE", "rank " + std::to_string(peer) + " announced " + std::string(what) + " of " + std::to_string(bytes) + " bytes in shared memory; the limit is " + std::to_string(kMaxPartBytes));
  return bytes;
}

}  // namespace

CallTimer::~CallTimer() {
  stats_.calls++;
  stats_.totalNs += nowNs() - start_;
}

ShmGroup::ShmGroup(std::shared_ptr<ShmMesh> mesh, std::vector<int> members, int slot)
    : mesh_(std::move(mesh)), members_(std::move(members)), index_(-1), slot_(slot), rank_(mesh_->rank()) {
  if (slot < 0 || slot >= kMaxSlots) throw CommError("TESSERA_ERR_INVALID_ARGUMENT", "collective slot " + std::to_string(slot) + " is outside [0, " + std::to_string(kMaxSlots) + ")");
  if (members_.empty() || static_cast<int>(members_.size()) > kMaxMembers) throw CommError("TESSERA_ERR_INVALID_ARGUMENT", "a group needs 1 to 64 members");
  for (size_t i = 0; i < members_.size(); i++) {
    if (members_[i] < 0 || members_[i] >= mesh_->size()) throw CommError("TESSERA_ERR_INVALID_ARGUMENT", "group member " + std::to_string(members_[i]) + " is not a rank of the mesh");
    if (members_[i] == rank_) index_ = static_cast<int>(i);
    else peers_.push_back(members_[i]);
  }
  if (index_ < 0) throw CommError("TESSERA_ERR_INVALID_ARGUMENT", "rank " + std::to_string(rank_) + " is not in the group");
  // Rounds count from this slot's phase, so a group made again on the same slot goes on where the last one stopped.
  round_ = (mesh_->slot(rank_, slot_).phase.load(std::memory_order_acquire) + 1) / 2;
}

uint64_t ShmGroup::beginRound() { return round_++; }

void ShmGroup::publish(uint64_t phase) {
  mesh_->slot(rank_, slot_).phase.store(phase, std::memory_order_release);
  for (int peer : peers_) mesh_->wake(peer);
}

void ShmGroup::waitForPeers(uint64_t phase, const char* what) {
  mesh_->waitUntil(
      [&] {
        for (int peer : peers_) {
          if (mesh_->slot(peer, slot_).phase.load(std::memory_order_acquire) < phase) return false;
        }
        return true;
      },
      peers_, what, stats.waitNs);
}

float* ShmGroup::partialBuffer(size_t count) {
  if (count * sizeof(float) > mesh_->halfBytes()) return nullptr;
  return mesh_->area(rank_, nextHalf());
}

void ShmGroup::allReduce(float* values, size_t count) {
  CallTimer timer(stats, nowNs());
  if (members_.size() == 1 || count == 0) return;
  const size_t halfFloats = mesh_->halfBytes() / sizeof(float);
  const bool registered = values == mesh_->area(rank_, nextHalf()) && count <= halfFloats;
  // An array that lies in the area itself (a view of an earlier result) goes through whole halves, staged by memmove, as one round when it fits.
  const bool inArea = !registered && overlapsArea(values, count);
  const Staging staging = registered ? Staging::kRegistered : inArea ? Staging::kWhole : Staging::kDirect;
  // Direct staging goes in pieces small enough to stay in cache between the copy in, the sum and the copy out.
  const size_t pieceFloats = staging == Staging::kDirect ? std::min(halfFloats, kPieceBytes / sizeof(float)) : halfFloats;
  for (size_t start = 0; start < count; start += pieceFloats) reduceRound(values + start, std::min(pieceFloats, count - start), staging);
}

bool ShmGroup::overlapsArea(const float* values, size_t count) const {
  const auto begin = reinterpret_cast<uintptr_t>(mesh_->area(rank_, 0));
  const uintptr_t end = begin + 2 * mesh_->halfBytes();
  const auto from = reinterpret_cast<uintptr_t>(values);
  return from < end && from + count * sizeof(float) > begin;
}

/**
 * One round of all-reduce over values[0, length). Member m sums chunk m of
 * every member's data in the canonical tree order (so a layout or piece size
 * never changes an element's bits) and writes the sum into chunk m of every
 * member's area: stores, which overlap the sum, rather than loads the peers
 * would wait on, and one wait per round. Only member m touches chunk m of
 * any area after the first wait, so nothing it writes is still to be read.
 * Direct staging writes only the chunks the peers read into the area and
 * sums this rank's own chunk straight from `values`.
 */
void ShmGroup::reduceRound(float* values, size_t length, Staging staging) {
  const size_t k = members_.size();
  const uint64_t round = beginRound();
  const int half = static_cast<int>(round % 2);
  float* mine = mesh_->area(rank_, half);
  const size_t chunkBegin = chunkStart(length, k, static_cast<size_t>(index_));
  const size_t chunkEnd = chunkStart(length, k, static_cast<size_t>(index_) + 1);
  if (staging == Staging::kWhole) std::memmove(mine, values, length * sizeof(float));
  if (staging == Staging::kDirect) {
    std::memcpy(mine, values, chunkBegin * sizeof(float));
    std::memcpy(mine + chunkEnd, values + chunkEnd, (length - chunkEnd) * sizeof(float));
  }
  publish(2 * round + 1);
  waitForPeers(2 * round + 1, "waiting for the peers' partials (all-reduce)");
  const float* parts[kMaxMembers];
  // Every member's area at this chunk, and with direct staging the array too.
  float* outs[kMaxMembers + 1];
  for (size_t m = 0; m < k; m++) outs[m] = mesh_->area(members_[m], half) + chunkBegin;
  for (size_t m = 0; m < k; m++) parts[m] = outs[m];
  int outCount = static_cast<int>(k);
  if (staging == Staging::kDirect) {
    parts[index_] = values + chunkBegin;
    outs[outCount++] = values + chunkBegin;
  }
  treeSum(parts, static_cast<int>(k), chunkEnd - chunkBegin, outs, outCount);
  // What the link carries for this rank: the peers' chunks of its data (they read them), and its sum to each peer.
  stats.bytesSent += (length - (chunkEnd - chunkBegin)) * sizeof(float) + (chunkEnd - chunkBegin) * sizeof(float) * (k - 1);
  publish(2 * round + 2);
  waitForPeers(2 * round + 2, "waiting for the peers' sums (all-reduce)");
  // Every chunk of the sum is in this rank's area now; the array takes the peers' chunks (direct) or all of it.
  if (staging == Staging::kWhole) std::memmove(values, mine, length * sizeof(float));
  if (staging == Staging::kDirect) {
    std::memcpy(values, mine, chunkBegin * sizeof(float));
    std::memcpy(values + chunkEnd, mine + chunkEnd, (length - chunkEnd) * sizeof(float));
  }
}

void ShmGroup::allGather(const uint8_t* mine, size_t length, const std::function<uint8_t*(size_t)>& allocate, std::vector<uint64_t>& lengths) {
  CallTimer timer(stats, nowNs());
  const size_t k = members_.size();
  const uint64_t halfBytes = mesh_->halfBytes();
  lengths.assign(k, 0);
  std::vector<uint64_t> offsets(k, 0);
  uint8_t* out = nullptr;
  uint64_t pieces = 1;
  for (uint64_t piece = 0; piece < pieces; piece++) {
    const uint64_t round = beginRound();
    const int half = static_cast<int>(round % 2);
    const uint64_t begin = piece * halfBytes;
    const uint64_t myBytes = begin < length ? std::min<uint64_t>(halfBytes, length - begin) : 0;
    std::memmove(mesh_->area(rank_, half), mine + begin, static_cast<size_t>(myBytes));
    mesh_->slot(rank_, slot_).partBytes[half] = length;
    publish(2 * round + 1);
    waitForPeers(2 * round + 1, "waiting for the peers' parts (all-gather)");
    if (piece == 0) {
      uint64_t total = 0;
      for (size_t m = 0; m < k; m++) {
        lengths[m] = static_cast<int>(m) == index_ ? length : boundedPart(mesh_->slot(members_[m], slot_).partBytes[half], members_[m], "an all-gather part");
        offsets[m] = total;
        total += lengths[m];
        pieces = std::max<uint64_t>(pieces, (lengths[m] + halfBytes - 1) / halfBytes);
      }
      out = allocate(static_cast<size_t>(total));
    }
    for (size_t m = 0; m < k; m++) {
      if (begin >= lengths[m]) continue;
      const uint64_t bytes = std::min<uint64_t>(halfBytes, lengths[m] - begin);
      const uint8_t* from = static_cast<int>(m) == index_ ? mine + begin : reinterpret_cast<const uint8_t*>(mesh_->area(members_[m], half));
      std::memcpy(out + offsets[m] + begin, from, static_cast<size_t>(bytes));
    }
    stats.bytesSent += myBytes * (k - 1);
    // Nobody waits for this phase; it keeps the counter at 2r+2 after every round.
    publish(2 * round + 2);
  }
}

/**
 * Round r: this rank's half holds a table — the length of its part for each
 * member, then its longest part — and one window of W bytes per member:
 * bytes [pW, (p+1)W) of that member's part in piece p. Every rank reads its
 * window from every member's half. The number of pieces comes from the
 * longest part anywhere, which every table carries.
 */
void ShmGroup::allToAll(const uint8_t* const* parts, const uint64_t* lengths, const std::function<uint8_t*(size_t)>& allocate, std::vector<uint64_t>& received) {
  CallTimer timer(stats, nowNs());
  const size_t k = members_.size();
  const uint64_t tableBytes = (k + 1) * sizeof(uint64_t);
  const uint64_t window = (mesh_->halfBytes() - tableBytes) / k / 64 * 64;
  if (window == 0) throw CommError("TESSERA_ERR_INVALID_ARGUMENT", "the shared area is too small for an all-to-all of " + std::to_string(k) + " members; raise TESSERA_SHM_AREA_MIB");
  uint64_t longest = 0;
  for (size_t j = 0; j < k; j++) longest = std::max(longest, lengths[j]);
  received.assign(k, 0);
  std::vector<uint64_t> offsets(k, 0);
  uint8_t* out = nullptr;
  uint64_t pieces = 1;
  for (uint64_t piece = 0; piece < pieces; piece++) {
    const uint64_t round = beginRound();
    const int half = static_cast<int>(round % 2);
    uint8_t* mine = reinterpret_cast<uint8_t*>(mesh_->area(rank_, half));
    uint64_t* table = reinterpret_cast<uint64_t*>(mine);
    for (size_t j = 0; j < k; j++) table[j] = lengths[j];
    table[k] = longest;
    const uint64_t begin = piece * window;
    for (size_t j = 0; j < k; j++) {
      if (static_cast<int>(j) == index_ || begin >= lengths[j]) continue;
      const uint64_t bytes = std::min(window, lengths[j] - begin);
      std::memcpy(mine + tableBytes + j * window, parts[j] + begin, static_cast<size_t>(bytes));
      stats.bytesSent += bytes;
    }
    publish(2 * round + 1);
    waitForPeers(2 * round + 1, "waiting for the peers' parts (all-to-all)");
    if (piece == 0) {
      uint64_t total = 0;
      for (size_t m = 0; m < k; m++) {
        const uint64_t* theirs = reinterpret_cast<const uint64_t*>(mesh_->area(members_[m], half));
        const bool own = static_cast<int>(m) == index_;
        received[m] = own ? lengths[m] : boundedPart(theirs[index_], members_[m], "an all-to-all part");
        offsets[m] = total;
        total += received[m];
        const uint64_t theirLongest = own ? longest : boundedPart(theirs[k], members_[m], "an all-to-all longest part");
        // The pieces come from the longest parts: a part longer than its sender's longest would never arrive whole.
        if (received[m] > theirLongest) throw CommError("TESSERA_ERR_PROTOCOL", "rank " + std::to_string(members_[m]) + " announced an all-to-all part of " + std::to_string(received[m]) + " bytes, longer than its longest (" + std::to_string(theirLongest) + ")");
        pieces = std::max<uint64_t>(pieces, (theirLongest + window - 1) / window);
      }
      out = allocate(static_cast<size_t>(total));
    }
    for (size_t m = 0; m < k; m++) {
      if (begin >= received[m]) continue;
      const uint64_t bytes = std::min(window, received[m] - begin);
      const uint8_t* from = static_cast<int>(m) == index_ ? parts[m] + begin : reinterpret_cast<const uint8_t*>(mesh_->area(members_[m], half)) + tableBytes + static_cast<size_t>(index_) * window;
      std::memcpy(out + offsets[m] + begin, from, static_cast<size_t>(bytes));
    }
    publish(2 * round + 2);
  }
}

}  // namespace tessera::comm
