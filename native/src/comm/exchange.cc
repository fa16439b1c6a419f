#include "exchange.h"

#include <sys/uio.h>

#include <optional>
#include <string>

namespace tessera::comm {

/** The largest message a peer may announce (a step's activations are megabytes; the shm transport has the same bound). */
constexpr uint64_t kMaxMessageBytes = uint64_t(1) << 30;

void Exchange::send(int peer, const void* data, uint64_t length, int* pending) {
  Transfer transfer;
  transfer.peer = peer;
  transfer.data = static_cast<uint8_t*>(const_cast<void*>(data));
  transfer.length = length;
  transfer.header = length;
  transfer.pending = pending;
  sends_[peer].push_back(std::move(transfer));
}

void Exchange::receive(int peer, std::function<uint8_t*(uint64_t)> place, int* pending) {
  Transfer transfer;
  transfer.peer = peer;
  transfer.place = std::move(place);
  transfer.pending = pending;
  receives_[peer].push_back(std::move(transfer));
}

void Exchange::receiveExactly(int peer, void* into, uint64_t length, int* pending) {
  Transfer transfer;
  transfer.peer = peer;
  transfer.data = static_cast<uint8_t*>(into);
  transfer.length = length;
  transfer.expected = true;
  transfer.pending = pending;
  receives_[peer].push_back(std::move(transfer));
}

bool Exchange::advanceSend(Transfer& t) {
  iovec parts[2];
  int count = 0;
  if (t.moved < 8) parts[count++] = {reinterpret_cast<uint8_t*>(&t.header) + t.moved, static_cast<size_t>(8 - t.moved)};
  const uint64_t payloadDone = t.moved < 8 ? 0 : t.moved - 8;
  if (t.length > payloadDone) parts[count++] = {t.data + payloadDone, static_cast<size_t>(t.length - payloadDone)};
  const size_t n = mesh_.trySend(t.peer, parts, count);
  t.moved += n;
  return n > 0;
}

bool Exchange::advanceReceive(Transfer& t) {
  bool moved = false;
  if (t.moved < 8) {
    // With the place known, header and payload come in one call (one syscall for a short message).
    iovec parts[2] = {{reinterpret_cast<uint8_t*>(&t.header) + t.moved, static_cast<size_t>(8 - t.moved)}, {t.data, static_cast<size_t>(t.length)}};
    const size_t n = mesh_.tryReceive(t.peer, parts, t.expected && t.length > 0 ? 2 : 1);
    t.moved += n;
    moved = n > 0;
    if (t.moved < 8) return moved;
    if (!t.expected) {
      // The length comes from the peer: bounded before it sizes an allocation.
      if (t.header > kMaxMessageBytes) {
        throw CommError("TESSERA_ERR_FRAME_TOO_LARGE", "a peer announced a message of " + std::to_string(t.header) + " bytes; the limit is " + std::to_string(kMaxMessageBytes));
      }
      t.length = t.header;
      t.data = t.place(t.length);
    } else if (t.header != t.length) {
      throw CommError("TESSERA_ERR_PROTOCOL", "a message of " + std::to_string(t.header) + " bytes arrived where " + std::to_string(t.length) + " were expected; the ranks ran different collectives, or the peer is not a rank of this mesh");
    }
  }
  const uint64_t payloadDone = t.moved - 8;
  if (t.length > payloadDone) {
    iovec part{t.data + payloadDone, static_cast<size_t>(t.length - payloadDone)};
    const size_t n = mesh_.tryReceive(t.peer, &part, 1);
    t.moved += n;
    moved |= n > 0;
  }
  return moved;
}

bool Exchange::progress() {
  bool moved = false;
  for (size_t peer = 0; peer < sends_.size(); peer++) {
    auto& sends = sends_[peer];
    while (!sends.empty()) {
      Transfer& t = sends.front();
      moved |= advanceSend(t);
      if (t.moved < 8 + t.length) break;
      stats_.bytesSent += t.length;
      if (t.pending) --*t.pending;
      sends.pop_front();
    }
    auto& receives = receives_[peer];
    while (!receives.empty()) {
      Transfer& t = receives.front();
      moved |= advanceReceive(t);
      if (t.moved < 8 || t.moved < 8 + t.length) break;
      if (t.pending) --*t.pending;
      receives.pop_front();
    }
  }
  return moved;
}

void Exchange::runUntil(const std::function<bool()>& done, const char* what) {
  // Set while nothing moves: the spin, then the poll() slices, counted as waiting.
  std::optional<WaitClock> stalled;
  for (;;) {
    const bool moved = progress();
    if (moved && stalled) {
      const uint64_t waited = stalled->waitedNs();
      mesh_.policy().learn(waited);
      stats_.waitNs += waited;
      stalled.reset();
    }
    if (done()) break;
    if (moved) continue;
    if (!stalled) stalled.emplace(mesh_.policy());
    if (stalled->spinning()) continue;
    std::vector<int> reading;
    std::vector<int> writing;
    for (size_t peer = 0; peer < sends_.size(); peer++) {
      if (!receives_[peer].empty()) reading.push_back(static_cast<int>(peer));
      if (!sends_[peer].empty()) writing.push_back(static_cast<int>(peer));
    }
    mesh_.sleep(reading, writing);
    // A dead peer's socket reads as closed, which progress() turns into RANK_LOST; abort and the stall deadline are checked here.
    stalled->check([] { return std::string(); }, what);
  }
  if (stalled) {
    const uint64_t waited = stalled->waitedNs();
    mesh_.policy().learn(waited);
    stats_.waitNs += waited;
  }
}

}  // namespace tessera::comm
