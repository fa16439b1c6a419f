#include "socket-mesh.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "mesh-hello.h"

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

namespace tessera::comm {
namespace {

/** The mesh token's longest form (the plan's is 32 to 64 hex digits). */
constexpr size_t kMaxTokenBytes = 256;
/** How long a listener gives an accepted connection for each of its greeting's messages: a rank sends at once. */
constexpr uint64_t kHelloStepNs = 5'000'000'000;

/**
 * Whether a mesh seals its frames: links that can leave the host (tcp) by
 * default, not Unix sockets (the host is the trust boundary there);
 * TESSERA_SEAL_DATA=1 seals both, =0 neither. Every rank must agree.
 */
bool sealsFrames(bool unixDomain) {
  const char* setting = std::getenv("TESSERA_SEAL_DATA");
  if (setting && std::strcmp(setting, "1") == 0) return true;
  if (setting && std::strcmp(setting, "0") == 0) return false;
  return !unixDomain;
}

[[noreturn]] void failErrno(const std::string& what) { throw CommError("TESSERA_ERR_RANK_LOST", what + ": " + std::strerror(errno)); }

void setNonBlocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL, 0) | O_NONBLOCK); }

void tune(int fd, bool unixDomain) {
  if (!unixDomain) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  }
#ifdef SO_NOSIGPIPE
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof(one));
#endif
}

/** How long connecting may take, and the mesh's policy (an abort ends the connect too). */
struct ConnectLimits {
  uint64_t deadlineNs;
  const WaitPolicy& policy;
};

/** Waits until `fd` is ready for `events`, the deadline passes or the mesh is aborted. */
void pollOne(int fd, short events, const ConnectLimits& limits, const char* what) {
  const uint64_t deadlineNs = limits.deadlineNs;
  for (;;) {
    const uint64_t now = nowNs();
    if (now >= deadlineNs) throw CommError("TESSERA_ERR_RANK_LOST", std::string("timed out ") + what);
    if (aborted(limits.policy)) throw CommError("TESSERA_ERR_RANK_LOST", std::string("aborted while ") + what);
    pollfd entry{fd, events, 0};
    const int ready = poll(&entry, 1, static_cast<int>(std::min<uint64_t>((deadlineNs - now) / 1'000'000 + 1, 100)));
    if (ready > 0) return;
    if (ready < 0 && errno != EINTR) failErrno(what);
  }
}

/** Moves exactly `length` bytes over a non-blocking socket before the deadline. */
void exchangeExactly(int fd, uint8_t* bytes, size_t length, bool sending, const ConnectLimits& limits, const char* what) {
  size_t done = 0;
  while (done < length) {
    const ssize_t n = sending ? send(fd, bytes + done, length - done, MSG_NOSIGNAL) : recv(fd, bytes + done, length - done, 0);
    if (n > 0) {
      done += static_cast<size_t>(n);
      continue;
    }
    if (n == 0) throw CommError("TESSERA_ERR_RANK_LOST", std::string("the connection closed while ") + what);
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) failErrno(what);
    pollOne(fd, sending ? POLLOUT : POLLIN, limits, what);
  }
}

int dial(const std::string& endpoint, bool unixDomain, const ConnectLimits& limits) {
  int fd = -1;
  if (unixDomain) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, endpoint.c_str(), sizeof(address.sun_path) - 1);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0) failErrno("cannot make a socket");
    if (::connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) {
      ::close(fd);
      failErrno("cannot reach a peer's data socket " + endpoint);
    }
  } else {
    const size_t colon = endpoint.rfind(':');
    std::string host = endpoint.substr(0, colon);
    if (host.size() > 1 && host.front() == '[') host = host.substr(1, host.size() - 2);
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (getaddrinfo(host.c_str(), endpoint.substr(colon + 1).c_str(), &hints, &found) != 0 || !found) {
      throw CommError("TESSERA_ERR_RANK_LOST", "cannot resolve a peer's data address " + endpoint);
    }
    fd = socket(found->ai_family, SOCK_STREAM, 0);
    if (fd < 0) {
      freeaddrinfo(found);
      failErrno("cannot make a socket");
    }
    setNonBlocking(fd);
    const int started = ::connect(fd, found->ai_addr, found->ai_addrlen);
    freeaddrinfo(found);
    if (started != 0 && errno != EINPROGRESS) {
      ::close(fd);
      failErrno("cannot reach a peer's data port " + endpoint);
    }
    pollOne(fd, POLLOUT, limits, "connecting to a peer's data port");
    int error = 0;
    socklen_t size = sizeof(error);
    getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size);
    if (error != 0) {
      ::close(fd);
      errno = error;
      failErrno("cannot reach a peer's data port " + endpoint);
    }
  }
  tune(fd, unixDomain);
  setNonBlocking(fd);
  return fd;
}

}  // namespace

SocketMesh::SocketMesh(int rank, int size) : rank_(rank), size_(size), sockets_(static_cast<size_t>(size), -1), policy_(WaitPolicy::fromEnvironment()) {
  if (size < 1 || rank < 0 || rank >= size) throw CommError("TESSERA_ERR_INVALID_ARGUMENT", "rank " + std::to_string(rank) + " is outside a mesh of " + std::to_string(size));
}

SocketMesh::~SocketMesh() { close(); }

std::string SocketMesh::listen(bool unixDomain, const std::string& hostOrPath) {
  unix_ = unixDomain;
  sealed_ = sealsFrames(unixDomain);
  if (unixDomain) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (hostOrPath.size() >= sizeof(address.sun_path)) throw CommError("TESSERA_ERR_INVALID_ARGUMENT", "Unix socket path too long: " + hostOrPath);
    std::strncpy(address.sun_path, hostOrPath.c_str(), sizeof(address.sun_path) - 1);
    listener_ = socket(AF_UNIX, SOCK_STREAM, 0);
    if (listener_ < 0 || bind(listener_, reinterpret_cast<sockaddr*>(&address), sizeof(address)) != 0) failErrno("cannot listen on " + hostOrPath);
    unixPath_ = hostOrPath;
  } else {
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* found = nullptr;
    if (getaddrinfo(hostOrPath.c_str(), "0", &hints, &found) != 0 || !found) throw CommError("TESSERA_ERR_INVALID_ARGUMENT", "cannot resolve " + hostOrPath + " to listen on");
    listener_ = socket(found->ai_family, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listener_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    const int bound = listener_ < 0 ? -1 : bind(listener_, found->ai_addr, found->ai_addrlen);
    freeaddrinfo(found);
    if (bound != 0) failErrno("cannot listen on " + hostOrPath);
  }
  if (::listen(listener_, 128) != 0) failErrno("cannot listen on " + hostOrPath);
  if (unixDomain) return hostOrPath;
  sockaddr_storage bound{};
  socklen_t length = sizeof(bound);
  getsockname(listener_, reinterpret_cast<sockaddr*>(&bound), &length);
  const int port = bound.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port) : ntohs(reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  return std::to_string(port);
}

namespace {

/** Where an accepted connection comes from, for the log. */
std::string peerName(int fd) {
  sockaddr_storage address{};
  socklen_t length = sizeof(address);
  char host[INET6_ADDRSTRLEN] = "a local socket";
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&address), &length) != 0) return host;
  if (address.ss_family == AF_INET) inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&address)->sin_addr, host, sizeof(host));
  if (address.ss_family == AF_INET6) inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&address)->sin6_addr, host, sizeof(host));
  return host;
}

/** A channel for the greeting on `fd`; each message must come within `stepNs` (0: the connect's own deadline). */
HelloChannel helloChannel(int fd, const ConnectLimits& limits, uint64_t stepNs) {
  auto bounded = [limits, stepNs] { return ConnectLimits{stepNs == 0 ? limits.deadlineNs : std::min(limits.deadlineNs, nowNs() + stepNs), limits.policy}; };
  return {
      [fd, bounded](const uint8_t* bytes, size_t length) { exchangeExactly(fd, const_cast<uint8_t*>(bytes), length, true, bounded(), "greeting a peer"); },
      [fd, bounded](uint8_t* bytes, size_t length) { exchangeExactly(fd, bytes, length, false, bounded(), "reading a peer's greeting"); },
  };
}

}  // namespace

void SocketMesh::connect(const std::vector<std::string>& endpoints, const std::string& token, uint64_t timeoutNs) {
  if (static_cast<int>(endpoints.size()) != size_) throw CommError("TESSERA_ERR_INVALID_ARGUMENT", "need one data endpoint per rank");
  if (token.empty() || token.size() > kMaxTokenBytes) throw CommError("TESSERA_ERR_INVALID_ARGUMENT", "the mesh token must have 1 to " + std::to_string(kMaxTokenBytes) + " bytes");
  const ConnectLimits deadline{nowNs() + timeoutNs, policy_};
  const HelloKeys keys{token, policy_.tag, size_, sealed_};
  if (sealed_) links_.resize(static_cast<size_t>(size_));
  LinkKeys derived{};
  // Lower ranks' listeners exist (the plan comes after every rank listens); a dial waits in their backlog,
  // and its greeting waits (up to the connect's deadline) until that rank has dialed its own lower ranks.
  for (int peer = 0; peer < rank_; peer++) {
    const int fd = dial(endpoints[peer], unix_, deadline);
    sockets_[peer] = fd;
    dialHello(helloChannel(fd, deadline, 0), keys, rank_, peer, derived);
    if (sealed_) links_[peer] = std::make_unique<SealedLink>(derived, rank_, peer);
  }
  int waiting = size_ - 1 - rank_;
  if (waiting > 0) setNonBlocking(listener_);
  while (waiting > 0) {
    pollOne(listener_, POLLIN, deadline, "waiting for the higher ranks to connect their data sockets");
    const int fd = accept(listener_, nullptr, nullptr);
    if (fd < 0) continue;
    setNonBlocking(fd);
    tune(fd, unix_);
    std::string why;
    int peer = -1;
    try {
      // Bounded per message: a silent stranger costs the real peers seconds, not the whole deadline.
      peer = acceptHello(helloChannel(fd, deadline, kHelloStepNs), keys, rank_, why, derived);
    } catch (const CommError& error) {
      if (aborted(policy_) || nowNs() >= deadline.deadlineNs) {
        ::close(fd);
        throw;
      }
      why = std::string("the greeting broke off (") + error.what() + ")";
    }
    if (peer >= 0 && sockets_[peer] >= 0) why = "rank " + std::to_string(peer) + " is already connected";
    if (!why.empty()) {
      // A stray or hostile connection: dropped and logged; the real peers are still awaited.
      std::fprintf(stderr, "tessera: rank %d refused a data connection from %s: TESSERA_ERR_JOIN_REFUSED (%s)\n", rank_, peerName(fd).c_str(), why.c_str());
      ::close(fd);
      continue;
    }
    sockets_[peer] = fd;
    if (sealed_) links_[peer] = std::make_unique<SealedLink>(derived, rank_, peer);
    waiting--;
  }
  if (listener_ >= 0) ::close(listener_);
  listener_ = -1;
  if (unix_) unlink(unixPath_.c_str());
}

size_t SocketMesh::trySend(int peer, const iovec* parts, int count) {
  if (sealed_) return links_[peer]->trySend(sockets_[peer], parts, count);
  msghdr message{};
  message.msg_iov = const_cast<iovec*>(parts);
  message.msg_iovlen = count;
  const ssize_t n = sendmsg(sockets_[peer], &message, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n >= 0) return static_cast<size_t>(n);
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 0;
  throwRankLost("rank " + std::to_string(peer) + "'s data connection failed (" + std::strerror(errno) + ")");
}

size_t SocketMesh::tryReceive(int peer, const iovec* parts, int count) {
  if (sealed_) return links_[peer]->tryReceive(sockets_[peer], parts, count);
  msghdr message{};
  message.msg_iov = const_cast<iovec*>(parts);
  message.msg_iovlen = count;
  const ssize_t n = recvmsg(sockets_[peer], &message, MSG_DONTWAIT);
  if (n > 0) return static_cast<size_t>(n);
  if (n == 0) throwRankLost("rank " + std::to_string(peer) + " closed its data connection");
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 0;
  throwRankLost("rank " + std::to_string(peer) + "'s data connection failed (" + std::strerror(errno) + ")");
}

void SocketMesh::sleep(const std::vector<int>& reading, const std::vector<int>& writing) {
  std::vector<pollfd> entries;
  for (int peer : reading) entries.push_back({sockets_[peer], POLLIN, 0});
  for (int peer : writing) entries.push_back({sockets_[peer], POLLOUT, 0});
  poll(entries.data(), entries.size(), static_cast<int>(policy_.sliceNs / 1'000'000 > 0 ? policy_.sliceNs / 1'000'000 : 1));
}

void SocketMesh::close() {
  for (int& fd : sockets_) {
    if (fd >= 0) ::close(fd);
    fd = -1;
  }
  if (listener_ >= 0) ::close(listener_);
  listener_ = -1;
  // A mesh closed before it connected (its plan was abandoned) leaves no socket file behind.
  if (unix_ && !unixPath_.empty()) unlink(unixPath_.c_str());
}

}  // namespace tessera::comm
