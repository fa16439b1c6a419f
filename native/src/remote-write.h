// remoteWrite(pid, parts, ranges), addressOf(view) and peerPid(fd): the
// single-copy KV transfer between two replicas on one host (remote-write.cc).
#pragma once
#include <napi.h>

namespace tessera {

Napi::Value RemoteWrite(const Napi::CallbackInfo& info);
Napi::Value AddressOf(const Napi::CallbackInfo& info);
Napi::Value PeerPid(const Napi::CallbackInfo& info);

}  // namespace tessera
