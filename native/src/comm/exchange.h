// Messages over a SocketMesh in flight at once: every peer has a FIFO of
// sends and one of receives, each message an 8-byte length then its bytes.
// `runUntil` moves whatever can move without blocking, on every link, and
// sleeps (after a spin) only when nothing could — so both directions of
// every link stream together and large messages cannot deadlock.
#pragma once
#include <cstdint>
#include <deque>
#include <functional>
#include <vector>

#include "group.h"
#include "socket-mesh.h"

namespace tessera::comm {

struct Transfer {
  int peer;
  /** Sends: the bytes. Receives: set by `place` once the length is known, or from the start (`expected`). */
  uint8_t* data = nullptr;
  uint64_t length = 0;
  /** Receives: where a message of this length goes (it may check the length or allocate). */
  std::function<uint8_t*(uint64_t)> place;
  /** Receives whose length and place are known: header and payload are read by one call. */
  bool expected = false;
  /** Decremented when the transfer completes. */
  int* pending = nullptr;
  /** Bytes of header + payload moved so far. */
  uint64_t moved = 0;
  uint64_t header = 0;
};

class Exchange {
 public:
  Exchange(SocketMesh& mesh, CommStats& stats) : mesh_(mesh), stats_(stats), sends_(static_cast<size_t>(mesh.size())), receives_(static_cast<size_t>(mesh.size())) {}

  void send(int peer, const void* data, uint64_t length, int* pending);
  void receive(int peer, std::function<uint8_t*(uint64_t)> place, int* pending);
  /** A receive of exactly `length` bytes into `into` (another length is TESSERA_ERR_INTERNAL). */
  void receiveExactly(int peer, void* into, uint64_t length, int* pending);
  /** Moves messages until `done()`, waiting as wait.h says. */
  void runUntil(const std::function<bool()>& done, const char* what);

 private:
  /** Moves what can move now; whether anything did. */
  bool progress();
  bool advanceSend(Transfer& transfer);
  bool advanceReceive(Transfer& transfer);

  SocketMesh& mesh_;
  CommStats& stats_;
  std::vector<std::deque<Transfer>> sends_;
  std::vector<std::deque<Transfer>> receives_;
};

}  // namespace tessera::comm
