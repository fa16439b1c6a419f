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
#include <cstring>

#ifndef MSG_NOSIGNAL
#define MSG_NOSIGNAL 0
#endif

namespace tessera::comm {
namespace {

constexpr uint32_t kHelloMagic = 0x54534d48;  // "TSMH"
constexpr size_t kTokenBytes = 64;

struct Hello {
  uint32_t magic;
  uint32_t rank;
  char token[kTokenBytes];
};

/** Compares two greeting tokens in time that does not depend on where they differ. */
bool sameToken(const char (&given)[kTokenBytes], const char (&wanted)[kTokenBytes]) {
  unsigned char diff = 0;
  for (size_t i = 0; i < kTokenBytes; i++) diff |= static_cast<unsigned char>(given[i] ^ wanted[i]);
  return diff == 0;
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

void SocketMesh::connect(const std::vector<std::string>& endpoints, const std::string& token, uint64_t timeoutNs) {
  if (static_cast<int>(endpoints.size()) != size_) throw CommError("TESSERA_ERR_INVALID_ARGUMENT", "need one data endpoint per rank");
  if (token.size() >= kTokenBytes) throw CommError("TESSERA_ERR_INVALID_ARGUMENT", "mesh token too long");
  const ConnectLimits deadline{nowNs() + timeoutNs, policy_};
  Hello mine{kHelloMagic, static_cast<uint32_t>(rank_), {}};
  std::strncpy(mine.token, token.c_str(), kTokenBytes - 1);
  // Lower ranks' listeners exist (the plan comes after every rank listens); a dial waits in their backlog.
  for (int peer = 0; peer < rank_; peer++) {
    const int fd = dial(endpoints[peer], unix_, deadline);
    sockets_[peer] = fd;
    exchangeExactly(fd, reinterpret_cast<uint8_t*>(&mine), sizeof(mine), true, deadline, "greeting a peer");
  }
  int waiting = size_ - 1 - rank_;
  if (waiting > 0) setNonBlocking(listener_);
  while (waiting > 0) {
    pollOne(listener_, POLLIN, deadline, "waiting for the higher ranks to connect their data sockets");
    const int fd = accept(listener_, nullptr, nullptr);
    if (fd < 0) continue;
    setNonBlocking(fd);
    tune(fd, unix_);
    Hello hello{};
    try {
      exchangeExactly(fd, reinterpret_cast<uint8_t*>(&hello), sizeof(hello), false, deadline, "reading a peer's greeting");
    } catch (const CommError&) {
      ::close(fd);
      continue;
    }
    hello.token[kTokenBytes - 1] = 0;
    const int peer = static_cast<int>(hello.rank);
    if (hello.magic != kHelloMagic || !sameToken(hello.token, mine.token) || peer <= rank_ || peer >= size_ || sockets_[peer] >= 0) {
      // A stray or hostile connection: dropped; the real peers are still awaited.
      ::close(fd);
      continue;
    }
    sockets_[peer] = fd;
    waiting--;
  }
  if (listener_ >= 0) ::close(listener_);
  listener_ = -1;
  if (unix_) unlink(unixPath_.c_str());
}

size_t SocketMesh::trySend(int peer, const iovec* parts, int count) {
  msghdr message{};
  message.msg_iov = const_cast<iovec*>(parts);
  message.msg_iovlen = count;
  const ssize_t n = sendmsg(sockets_[peer], &message, MSG_NOSIGNAL | MSG_DONTWAIT);
  if (n >= 0) return static_cast<size_t>(n);
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return 0;
  throwRankLost("rank " + std::to_string(peer) + "'s data connection failed (" + std::strerror(errno) + ")");
}

size_t SocketMesh::tryReceive(int peer, const iovec* parts, int count) {
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
