#include "socket-group.h"

#include <algorithm>
#include <cstring>
#include <string>

#include "tree-sum.h"

namespace tessera::comm {
namespace {

/** Longest all-reduce done in one round (64 KiB), as in collectives.ts. */
constexpr size_t kOneRoundFloats = 16 * 1024;
/** Floats per segment (1 MiB), as in all-reduce.ts. */
constexpr size_t kSegmentFloats = 256 * 1024;
constexpr int kMaxMembers = 64;

}  // namespace

SocketGroup::SocketGroup(std::shared_ptr<SocketMesh> mesh, std::vector<int> members) : mesh_(std::move(mesh)), members_(std::move(members)) {
  if (members_.empty() || static_cast<int>(members_.size()) > kMaxMembers) throw CommError("TESSERA_ERR_INVALID_ARGUMENT", "a group needs 1 to 64 members");
  for (size_t i = 0; i < members_.size(); i++) {
    if (members_[i] < 0 || members_[i] >= mesh_->size()) throw CommError("TESSERA_ERR_INVALID_ARGUMENT", "group member " + std::to_string(members_[i]) + " is not a rank of the mesh");
    if (members_[i] == mesh_->rank()) index_ = static_cast<int>(i);
  }
  if (index_ < 0) throw CommError("TESSERA_ERR_INVALID_ARGUMENT", "rank " + std::to_string(mesh_->rank()) + " is not in the group");
}

void SocketGroup::allReduce(float* values, size_t count) {
  CallTimer timer(stats, nowNs());
  if (members_.size() == 1 || count == 0) return;
  if (count <= kOneRoundFloats) allReduceOneRound(values, count);
  else allReduceSegmented(values, count);
}

void SocketGroup::allReduceOneRound(float* values, size_t count) {
  const size_t k = members_.size();
  scratch_.resize(std::max(scratch_.size(), (k - 1) * count));
  Exchange exchange(*mesh_, stats);
  int pending = 0;
  const float* parts[kMaxMembers];
  size_t slot = 0;
  for (size_t m = 0; m < k; m++) {
    if (static_cast<int>(m) == index_) {
      parts[m] = values;
      continue;
    }
    float* into = scratch_.data() + slot++ * count;
    parts[m] = into;
    pending += 2;
    exchange.receiveExactly(members_[m], into, count * sizeof(float), &pending);
    exchange.send(members_[m], values, count * sizeof(float), &pending);
  }
  exchange.runUntil([&] { return pending == 0; }, "exchanging partials (all-reduce)");
  treeSum(parts, static_cast<int>(k), count, values);
}

void SocketGroup::allReduceSegmented(float* values, size_t count) {
  const size_t k = members_.size();
  const size_t me = static_cast<size_t>(index_);
  const size_t segments = (count + kSegmentFloats - 1) / kSegmentFloats;
  // scratch: for each segment, (k - 1) peers' partials of this member's chunk.
  std::vector<size_t> scratchAt(segments);
  size_t used = 0;
  for (size_t s = 0; s < segments; s++) {
    const size_t length = std::min(kSegmentFloats, count - s * kSegmentFloats);
    scratchAt[s] = used;
    used += (k - 1) * (chunkStart(length, k, me + 1) - chunkStart(length, k, me));
  }
  scratch_.resize(std::max(scratch_.size(), used));
  Exchange exchange(*mesh_, stats);
  std::vector<int> scattered(segments, 0);
  int pending = 0;
  auto chunkOf = [&](size_t s, size_t m, size_t& begin, size_t& end) {
    const size_t length = std::min(kSegmentFloats, count - s * kSegmentFloats);
    begin = s * kSegmentFloats + chunkStart(length, k, m);
    end = s * kSegmentFloats + chunkStart(length, k, m + 1);
  };
  // Per peer, in this order on every member: the scatter of every segment, then the gathered sums.
  for (size_t m = 0; m < k; m++) {
    if (m == me) continue;
    for (size_t s = 0; s < segments; s++) {
      size_t begin, end;
      chunkOf(s, me, begin, end);
      const size_t slot = m < me ? m : m - 1;
      float* into = scratch_.data() + scratchAt[s] + slot * (end - begin);
      scattered[s]++;
      exchange.receiveExactly(members_[m], into, (end - begin) * sizeof(float), &scattered[s]);
    }
    for (size_t s = 0; s < segments; s++) {
      size_t begin, end;
      chunkOf(s, m, begin, end);
      pending++;
      // A gathered sum lands on a chunk this member scattered; it can only come after the peer got that scatter.
      exchange.receiveExactly(members_[m], values + begin, (end - begin) * sizeof(float), &pending);
    }
    for (size_t s = 0; s < segments; s++) {
      size_t begin, end;
      chunkOf(s, m, begin, end);
      pending++;
      exchange.send(members_[m], values + begin, (end - begin) * sizeof(float), &pending);
    }
  }
  for (size_t s = 0; s < segments; s++) {
    exchange.runUntil([&] { return scattered[s] == 0; }, "receiving partials (all-reduce)");
    size_t begin, end;
    chunkOf(s, me, begin, end);
    const float* parts[kMaxMembers];
    for (size_t m = 0; m < k; m++) {
      const size_t slot = m < me ? m : m - 1;
      parts[m] = m == me ? values + begin : scratch_.data() + scratchAt[s] + slot * (end - begin);
    }
    treeSum(parts, static_cast<int>(k), end - begin, values + begin);
    for (size_t m = 0; m < k; m++) {
      if (m == me) continue;
      pending++;
      exchange.send(members_[m], values + begin, (end - begin) * sizeof(float), &pending);
    }
  }
  exchange.runUntil([&] { return pending == 0; }, "gathering sums (all-reduce)");
}

void SocketGroup::allGather(const uint8_t* mine, size_t length, const std::function<uint8_t*(size_t)>& allocate, std::vector<uint64_t>& lengths) {
  CallTimer timer(stats, nowNs());
  const size_t k = members_.size();
  std::vector<std::vector<uint8_t>> parts(k);
  Exchange exchange(*mesh_, stats);
  int pending = 0;
  for (size_t m = 0; m < k; m++) {
    if (static_cast<int>(m) == index_) continue;
    pending += 2;
    std::vector<uint8_t>* part = &parts[m];
    exchange.receive(members_[m], [part](uint64_t bytes) {
      part->resize(static_cast<size_t>(bytes));
      return part->data();
    }, &pending);
    exchange.send(members_[m], mine, length, &pending);
  }
  exchange.runUntil([&] { return pending == 0; }, "exchanging parts (all-gather)");
  lengths.assign(k, 0);
  size_t total = 0;
  for (size_t m = 0; m < k; m++) total += (lengths[m] = static_cast<int>(m) == index_ ? length : parts[m].size());
  uint8_t* out = allocate(total);
  size_t at = 0;
  for (size_t m = 0; m < k; m++) {
    std::memcpy(out + at, static_cast<int>(m) == index_ ? mine : parts[m].data(), static_cast<size_t>(lengths[m]));
    at += lengths[m];
  }
}

void SocketGroup::allToAll(const uint8_t* const* parts, const uint64_t* lengths, const std::function<uint8_t*(size_t)>& allocate, std::vector<uint64_t>& received) {
  CallTimer timer(stats, nowNs());
  const size_t k = members_.size();
  std::vector<std::vector<uint8_t>> incoming(k);
  Exchange exchange(*mesh_, stats);
  int pending = 0;
  for (size_t m = 0; m < k; m++) {
    if (static_cast<int>(m) == index_) continue;
    pending += 2;
    std::vector<uint8_t>* part = &incoming[m];
    exchange.receive(members_[m], [part](uint64_t bytes) {
      part->resize(static_cast<size_t>(bytes));
      return part->data();
    }, &pending);
    exchange.send(members_[m], parts[m], lengths[m], &pending);
  }
  exchange.runUntil([&] { return pending == 0; }, "exchanging parts (all-to-all)");
  received.assign(k, 0);
  size_t total = 0;
  for (size_t m = 0; m < k; m++) total += (received[m] = static_cast<int>(m) == index_ ? lengths[m] : incoming[m].size());
  uint8_t* out = allocate(total);
  size_t at = 0;
  for (size_t m = 0; m < k; m++) {
    std::memcpy(out + at, static_cast<int>(m) == index_ ? parts[m] : incoming[m].data(), static_cast<size_t>(received[m]));
    at += received[m];
  }
}

}  // namespace tessera::comm
