// The native data plane between ranks on different hosts (or over Unix
// sockets on one): one stream socket per pair of ranks, opened by this
// addon itself (Node never sees these descriptors), non-blocking after the
// handshake. The higher rank dials the lower one; both prove they hold the
// generation's mesh token by a challenge-response (mesh-hello.h: the token
// never crosses); a stranger is dropped and logged. Then, on a sealed mesh
// (tcp unless TESSERA_SEAL_DATA=0; unix only with TESSERA_SEAL_DATA=1),
// every frame travels in AES-256-GCM records (sealed-link.h). Reads and writes never block; waits are
// poll() in short slices with the checks of wait.h, after a spin of plain
// non-blocking attempts (busy-polling).
#pragma once
#include <sys/uio.h>

#include <memory>
#include <string>
#include <vector>

#include "sealed-link.h"
#include "wait.h"

namespace tessera::comm {

class SocketMesh {
 public:
  SocketMesh(int rank, int size);
  ~SocketMesh();

  /** Listens on `host` (TCP, any free port; returns the port) or on the Unix socket `path` (returns it). */
  std::string listen(bool unixDomain, const std::string& hostOrPath);
  /**
   * Connects to every peer: `endpoints[i]` is "host:port" or a Unix socket
   * path; dials lower ranks, accepts higher ones, each greeting proving `token`
   * (bound to the mesh's tag, its plan generation).
   */
  void connect(const std::vector<std::string>& endpoints, const std::string& token, uint64_t timeoutNs);
  int rank() const { return rank_; }
  /** Whether frames are sealed (known once listen() chose the kind of socket). */
  bool sealed() const { return sealed_; }
  int size() const { return size_; }
  WaitPolicy& policy() { return policy_; }

  /** Bytes written to / read from `peer` now (0 when it would block); throws RANK_LOST when the peer is gone. */
  size_t trySend(int peer, const iovec* parts, int count);
  size_t tryReceive(int peer, const iovec* parts, int count);
  /** Sleeps until a peer in `reading` can be read or one in `writing` written, or one slice passes. */
  void sleep(const std::vector<int>& reading, const std::vector<int>& writing);
  void close();

 private:
  int rank_;
  int size_;
  bool unix_ = false;
  std::string unixPath_;
  int listener_ = -1;
  /** [size]: the connection to each peer; -1 at this rank. */
  std::vector<int> sockets_;
  bool sealed_ = false;
  /** [size]: each peer's record layer on a sealed mesh; empty otherwise. */
  std::vector<std::unique_ptr<SealedLink>> links_;
  WaitPolicy policy_;
};

}  // namespace tessera::comm
