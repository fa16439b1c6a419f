// remoteWrite(pid, parts, ranges): copies the byte views `parts` (in order,
// end to end) into another process's memory at `ranges` ([address, bytes]
// pairs in a Float64Array, end to end) with process_vm_writev: one copy,
// from this process's KV pool straight into the blocks a decode replica on
// the same host reserved, where the shared-memory ring took two (into the
// ring, out of it) and the second one from memory the first had left
// cold. The kernel checks, at every call, that this process may write the
// other's memory (same user and the target dumpable, or CAP_SYS_PTRACE):
// when it may not, the caller gets EPERM and keeps to the ring.
//
// addressOf(view): where a typed array's first byte is in this process, for
// the decode replica to tell its writer where its pools are. Addresses of
// x86-64 and arm64 user space fit a double exactly (below 2^53).
//
// peerPid(fd): the process at the other end of a connected Unix domain
// socket, as the kernel recorded it when the socket connected
// (SO_PEERCRED): the writer checks that the process whose memory it is told
// to write is the one it is talking to, not one the peer names.
#include "remote-write.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "napi-args.h"

namespace tessera {
namespace {

constexpr size_t kMaxVectors = 1024;  // IOV_MAX on Linux

/** A cursor over a list of iovecs, consumed a batch at a time. */
struct Cursor {
  std::vector<iovec> all;
  size_t index = 0;
  size_t within = 0;

  /** Up to kMaxVectors iovecs from the cursor on (the first shortened by what is consumed of it). */
  std::vector<iovec> batch() const {
    std::vector<iovec> out;
    for (size_t i = index; i < all.size() && out.size() < kMaxVectors; i++) {
      iovec vector = all[i];
      if (i == index) vector = {static_cast<uint8_t*>(vector.iov_base) + within, vector.iov_len - within};
      out.push_back(vector);
    }
    return out;
  }

  void advance(size_t bytes) {
    while (bytes > 0 && index < all.size()) {
      const size_t left = all[index].iov_len - within;
      if (bytes < left) {
        within += bytes;
        return;
      }
      bytes -= left;
      index++;
      within = 0;
    }
  }

  bool done() const { return index >= all.size(); }
};

}  // namespace

Napi::Value RemoteWrite(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const double pidArg = number(info, 0, "pid");
  require(pidArg > 0 && pidArg <= INT_MAX && pidArg == static_cast<double>(static_cast<int>(pidArg)), env, "remoteWrite: pid must be a process id");
  require(info.Length() > 2 && info[1].IsArray() && info[2].IsTypedArray(), env, "remoteWrite: (pid, parts: Uint8Array[], ranges: Float64Array)");
  Napi::Array parts = info[1].As<Napi::Array>();
  Napi::TypedArray rangesArray = info[2].As<Napi::TypedArray>();
  require(rangesArray.TypedArrayType() == napi_float64_array && rangesArray.ElementLength() % 2 == 0, env, "remoteWrite: ranges must be a Float64Array of [address, bytes] pairs");
  Cursor local;
  Cursor remote;
  size_t localBytes = 0;
  for (uint32_t i = 0; i < parts.Length(); i++) {
    Napi::Value part = parts[i];
    require(part.IsTypedArray() && part.As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array, env, "remoteWrite: every part must be a Uint8Array");
    Napi::Uint8Array bytes = part.As<Napi::Uint8Array>();
    if (bytes.ByteLength() == 0) continue;
    local.all.push_back({bytes.Data(), bytes.ByteLength()});
    localBytes += bytes.ByteLength();
  }
  const double* ranges = rangesArray.As<Napi::Float64Array>().Data();
  size_t remoteBytes = 0;
  for (size_t i = 0; i < rangesArray.ElementLength(); i += 2) {
    const double address = ranges[i];
    const double length = ranges[i + 1];
    require(address > 0 && address < 0x1p53 && length >= 0 && length < 0x1p46 && address == static_cast<double>(static_cast<uint64_t>(address)) &&
                length == static_cast<double>(static_cast<size_t>(length)),
            env, "remoteWrite: a range is not a whole address and length");
    if (length == 0) continue;
    remote.all.push_back({reinterpret_cast<void*>(static_cast<uintptr_t>(address)), static_cast<size_t>(length)});
    remoteBytes += static_cast<size_t>(length);
  }
  require(localBytes == remoteBytes, env, "remoteWrite: the parts hold " + std::to_string(localBytes) + " bytes but the ranges " + std::to_string(remoteBytes));
  size_t written = 0;
  while (!local.done()) {
    const std::vector<iovec> from = local.batch();
    const std::vector<iovec> to = remote.batch();
    const ssize_t done = ::process_vm_writev(static_cast<pid_t>(pidArg), from.data(), from.size(), to.data(), to.size(), 0);
    if (done < 0) {
      if (errno == EINTR) continue;
      Napi::Error error = Napi::Error::New(env, std::string("remoteWrite: process_vm_writev failed: ") + std::strerror(errno));
      error.Set("errno", Napi::Number::New(env, errno));
      throw error;
    }
    // Zero bytes with bytes left: the remote range is not mapped in full (the kernel stops at the first fault).
    if (done == 0) throw Napi::Error::New(env, "remoteWrite: the other process has no memory at the range given");
    local.advance(static_cast<size_t>(done));
    remote.advance(static_cast<size_t>(done));
    written += static_cast<size_t>(done);
  }
  return Napi::Number::New(env, static_cast<double>(written));
}

Napi::Value AddressOf(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  require(info.Length() > 0 && info[0].IsTypedArray(), env, "addressOf: a typed array");
  Napi::TypedArray view = info[0].As<Napi::TypedArray>();
  const uint8_t* base = static_cast<const uint8_t*>(view.ArrayBuffer().Data()) + view.ByteOffset();
  return Napi::Number::New(env, static_cast<double>(reinterpret_cast<uintptr_t>(base)));
}

Napi::Value PeerPid(const Napi::CallbackInfo& info) {
  const Napi::Env env = info.Env();
  const double fdArg = number(info, 0, "fd");
  require(fdArg >= 0 && fdArg <= INT_MAX && fdArg == static_cast<double>(static_cast<int>(fdArg)), env, "peerPid: fd must be an open descriptor");
  ucred credentials{};
  socklen_t length = sizeof(credentials);
  if (::getsockopt(static_cast<int>(fdArg), SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0 || credentials.pid <= 0) return env.Undefined();
  return Napi::Number::New(env, credentials.pid);
}

}  // namespace tessera
