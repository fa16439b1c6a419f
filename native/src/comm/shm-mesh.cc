#include "shm-mesh.h"

#include <errno.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

namespace tessera::comm {
namespace {

/** The layout `mapping`'s header gives, if its rings and an area of two `halfBytes` halves lie inside the file, aligned. */
bool layoutFits(const Mapping& mapping, int size, uint64_t halfBytes, uint64_t& ringsOffset, uint64_t& ringBytes, uint64_t& areaOffset) {
  const SegmentHeader* h = mapping.header();
  ringsOffset = h->ringsOffset;
  ringBytes = h->ringBytes;
  areaOffset = h->areaOffset;
  const uint64_t length = mapping.length();
  if (ringsOffset < sizeof(SegmentHeader) || ringsOffset > length || ringsOffset % 64 != 0) return false;
  if (ringBytes < 64 || ringBytes % 64 != 0 || ringBytes > length) return false;
  const uint64_t stride = sizeof(RingHeader) + ringBytes;
  if (stride * static_cast<uint64_t>(size) > length - ringsOffset) return false;
  if (areaOffset < ringsOffset + stride * static_cast<uint64_t>(size) || areaOffset > length || areaOffset % 64 != 0) return false;
  return 2 * halfBytes <= length - areaOffset;
}

}  // namespace

ShmMesh::ShmMesh(const std::string& path, int rank, int size, uint64_t ringBytes, uint64_t areaBytes)
    : path_(path), rank_(rank), size_(size), halfBytes_(areaBytes / 2 / 64 * 64), policy_(WaitPolicy::fromEnvironment()), segments_(static_cast<size_t>(size)), layouts_(static_cast<size_t>(size)) {
  if (size < 1 || rank < 0 || rank >= size) throw CommError("TESSERA_ERR_INVALID_ARGUMENT", "rank " + std::to_string(rank) + " is outside a mesh of " + std::to_string(size));
  if (ringBytes < 4096 || areaBytes < 8192 || ringBytes % 64 != 0) throw CommError("TESSERA_ERR_INVALID_ARGUMENT", "shared-memory rings need 4 KiB (a multiple of 64 bytes) and areas 8 KiB at least");
  segments_[rank] = createSegment(path, rank, size, ringBytes, areaBytes);
  const SegmentHeader* own = segments_[rank]->header();
  layouts_[rank] = {own->ringsOffset, own->ringBytes, own->areaOffset};
  if (size == 1) {
    unlink(path.c_str());
    unlinked_ = true;
  }
}

ShmMesh::~ShmMesh() { close(); }

void ShmMesh::attach(int peer, const std::string& path) {
  if (peer < 0 || peer >= size_ || peer == rank_) throw CommError("TESSERA_ERR_INVALID_ARGUMENT", "cannot attach rank " + std::to_string(peer));
  std::shared_ptr<Mapping> mapping = attachSegment(path, peer, size_);
  Layout layout;
  if (!layoutFits(*mapping, size_, halfBytes_, layout.ringsOffset, layout.ringBytes, layout.areaOffset)) {
    throw CommError("TESSERA_ERR_PROTOCOL", "rank " + std::to_string(peer) + "'s shared-memory segment " + path + " places its rings or area outside its file (or its area is smaller than this rank's)");
  }
  segments_[peer] = std::move(mapping);
  layouts_[peer] = layout;
  // The last peer to map a segment unlinks its file: nothing is left in /dev/shm once the mesh is up.
  SegmentHeader* theirs = header(peer);
  if (theirs->attached.fetch_add(1) + 1 == static_cast<uint32_t>(size_ - 1)) unlink(theirs->path);
}

RingHeader* ShmMesh::ring(int owner, int sender) const {
  const Layout& layout = layouts_[owner];
  return reinterpret_cast<RingHeader*>(segments_[owner]->bytes() + layout.ringsOffset + (sizeof(RingHeader) + layout.ringBytes) * static_cast<uint64_t>(sender));
}

uint64_t ShmMesh::inFlight(const RingHeader* r, uint64_t capacity, int peer) const {
  const uint64_t bytes = r->head.value.load(std::memory_order_acquire) - r->tail.value.load(std::memory_order_acquire);
  if (bytes > capacity) throw CommError("TESSERA_ERR_PROTOCOL", "the shared-memory ring with rank " + std::to_string(peer) + " claims " + std::to_string(bytes) + " bytes in flight; it holds " + std::to_string(capacity));
  return bytes;
}

uint8_t* ShmMesh::ringData(int owner, int sender) const { return reinterpret_cast<uint8_t*>(ring(owner, sender)) + sizeof(RingHeader); }

size_t ShmMesh::ringWrite(int peer, const uint8_t* data, size_t length) {
  // This rank's ring in the peer's segment.
  RingHeader* r = ring(peer, rank_);
  const uint64_t capacity = layouts_[peer].ringBytes;
  // Both indices lie in the peer's segment: checked before they place a copy.
  const uint64_t used = inFlight(r, capacity, peer);
  const uint64_t head = r->head.value.load(std::memory_order_relaxed);
  const size_t count = static_cast<size_t>(std::min<uint64_t>(length, capacity - used));
  if (count == 0) return 0;
  uint8_t* base = ringData(peer, rank_);
  const size_t at = static_cast<size_t>(head % capacity);
  const size_t first = std::min(count, static_cast<size_t>(capacity) - at);
  std::memcpy(base + at, data, first);
  std::memcpy(base, data + first, count - first);
  r->head.value.store(head + count, std::memory_order_release);
  wake(peer);
  return count;
}

size_t ShmMesh::ringRead(int peer, uint8_t* into, size_t length) {
  RingHeader* r = ring(rank_, peer);
  const uint64_t capacity = layouts_[rank_].ringBytes;
  const uint64_t available = inFlight(r, capacity, peer);
  const uint64_t tail = r->tail.value.load(std::memory_order_relaxed);
  const size_t count = static_cast<size_t>(std::min<uint64_t>(length, available));
  if (count == 0) return 0;
  const uint8_t* base = ringData(rank_, peer);
  const size_t at = static_cast<size_t>(tail % capacity);
  const size_t first = std::min(count, static_cast<size_t>(capacity) - at);
  std::memcpy(into, base + at, first);
  std::memcpy(into + first, base, count - first);
  r->tail.value.store(tail + count, std::memory_order_release);
  // The writer may be waiting for room.
  wake(peer);
  return count;
}

size_t ShmMesh::ringReadable(int peer) const {
  return static_cast<size_t>(inFlight(ring(rank_, peer), layouts_[rank_].ringBytes, peer));
}

std::string ShmMesh::peerGone(int peer) const {
  const SegmentHeader* h = header(peer);
  if (h->closed.load(std::memory_order_acquire)) return "rank " + std::to_string(peer) + " closed its transport";
  // EPERM means a process of another user has the pid: alive as far as we can tell.
  if (h->pid != static_cast<int32_t>(getpid()) && kill(h->pid, 0) != 0 && errno == ESRCH) return "rank " + std::to_string(peer) + " (pid " + std::to_string(h->pid) + ") exited";
  return "";
}

std::string ShmMesh::firstGone(const std::vector<int>& peers) const {
  for (int peer : peers) {
    std::string gone = peerGone(peer);
    if (!gone.empty()) return gone;
  }
  return "";
}

uint32_t ShmMesh::doorbell() const { return header(rank_)->doorbell.load(std::memory_order_acquire); }

void ShmMesh::sleepOnDoorbell(uint32_t seen, uint64_t timeoutNs) {
  SegmentHeader* own = header(rank_);
  own->sleepers.fetch_add(1, std::memory_order_seq_cst);
  futexWait(&own->doorbell, seen, timeoutNs);
  own->sleepers.fetch_sub(1, std::memory_order_seq_cst);
}

void ShmMesh::wake(int peer) {
  SegmentHeader* theirs = header(peer);
  theirs->doorbell.fetch_add(1, std::memory_order_seq_cst);
  if (theirs->sleepers.load(std::memory_order_seq_cst) != 0) futexWakeAll(&theirs->doorbell);
}

void ShmMesh::close() {
  SegmentHeader* own = header(rank_);
  if (own->closed.exchange(1)) return;
  for (int peer = 0; peer < size_; peer++) {
    if (peer != rank_ && segments_[peer]) wake(peer);
  }
  wake(rank_);
  if (!unlinked_) {
    unlink(path_.c_str());
    unlinked_ = true;
  }
}

float* ShmMesh::area(int rank, int half) const {
  return reinterpret_cast<float*>(segments_[rank]->bytes() + layouts_[rank].areaOffset + halfBytes_ * static_cast<uint64_t>(half));
}

GroupSlot& ShmMesh::slot(int rank, int index) const { return header(rank)->slots[index]; }

void ShmMesh::stream(int peer, const uint8_t* frame, uint8_t* landing, size_t length, int count, bool sending, bool receiving) {
  // Frames as the Transport writes them: an 8-byte length, then the bytes.
  const uint64_t frameBytes = 8 + length;
  uint64_t sent = sending ? 0 : frameBytes * static_cast<uint64_t>(count);
  uint64_t received = receiving ? 0 : frameBytes * static_cast<uint64_t>(count);
  const uint64_t total = frameBytes * static_cast<uint64_t>(count);
  const uint64_t header = length;
  uint64_t waited = 0;
  while (sent < total || received < total) {
    // The doorbell before looking at the rings: a peer that moves after the look rings it past `seen`, so the wait
    // below sees that. Read after the look, a ring between the look and the read would be missed, and with the
    // peer waiting on this rank too, both would sleep for good.
    const uint32_t seen = doorbell();
    bool moved = false;
    if (sent < total) {
      const uint64_t at = sent % frameBytes;
      const size_t n = at < 8 ? ringWrite(peer, reinterpret_cast<const uint8_t*>(&header) + at, static_cast<size_t>(8 - at)) : ringWrite(peer, frame + (at - 8), static_cast<size_t>(frameBytes - at));
      sent += n;
      moved |= n > 0;
    }
    if (received < total) {
      const uint64_t at = received % frameBytes;
      uint64_t got = 0;
      const size_t n = at < 8 ? ringRead(peer, reinterpret_cast<uint8_t*>(&got) + at, static_cast<size_t>(8 - at)) : ringRead(peer, landing + (at - 8), static_cast<size_t>(frameBytes - at));
      received += n;
      moved |= n > 0;
    }
    if (moved) continue;
    waitUntil([&] { return doorbell() != seen; }, {peer}, "streaming frames", waited);
  }
}

}  // namespace tessera::comm
