#include "comm-bindings.h"

#include <string>
#include <vector>

#include "binding-args.h"
#include "exchange.h"

namespace tessera {
namespace {

using namespace bindings;

// --- shared memory -------------------------------------------------------

Napi::Value ShmCreate(const Napi::CallbackInfo& info) {
  const std::string path = stringArg(info, 0, "path");
  const int rank = intArg(info, 1, "rank");
  const int size = intArg(info, 2, "size");
  const double ringBytes = numberArg(info, 3, "ringBytes");
  const double areaBytes = numberArg(info, 4, "areaBytes");
  return guarded(info.Env(), [&] {
    auto* box = new MeshBox{std::make_shared<comm::ShmMesh>(path, rank, size, static_cast<uint64_t>(ringBytes), static_cast<uint64_t>(areaBytes)), nullptr};
    return wrapMesh(info.Env(), box);
  });
}

Napi::Value ShmAttach(const Napi::CallbackInfo& info) {
  comm::ShmMesh& mesh = shmArg(info);
  const int peer = intArg(info, 1, "peer");
  const std::string path = stringArg(info, 2, "path");
  guarded(info.Env(), [&] { mesh.attach(peer, path); });
  return info.Env().Undefined();
}

int peerArg(const Napi::CallbackInfo& info, int size, int self) {
  const int peer = intArg(info, 1, "peer");
  if (peer < 0 || peer >= size || peer == self) throw Napi::RangeError::New(info.Env(), "peer outside the mesh");
  return peer;
}

/** shmRingWrite(mesh, peer, bytes, offset, length) → bytes written now. */
Napi::Value ShmRingWrite(const Napi::CallbackInfo& info) {
  comm::ShmMesh& mesh = shmArg(info);
  const int peer = peerArg(info, mesh.size(), mesh.rank());
  Napi::Uint8Array bytes = bytesAt(info, 2);
  const double offset = numberArg(info, 3, "offset");
  const double length = numberArg(info, 4, "length");
  checkRange(info.Env(), bytes, offset, length);
  const size_t n = guarded(info.Env(), [&] { return mesh.ringWrite(peer, bytes.Data() + static_cast<size_t>(offset), static_cast<size_t>(length)); });
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

/** shmRingRead(mesh, peer, into, offset, length) → bytes read now. */
Napi::Value ShmRingRead(const Napi::CallbackInfo& info) {
  comm::ShmMesh& mesh = shmArg(info);
  const int peer = peerArg(info, mesh.size(), mesh.rank());
  Napi::Uint8Array into = bytesAt(info, 2);
  const double offset = numberArg(info, 3, "offset");
  const double length = numberArg(info, 4, "length");
  checkRange(info.Env(), into, offset, length);
  const size_t n = guarded(info.Env(), [&] { return mesh.ringRead(peer, into.Data() + static_cast<size_t>(offset), static_cast<size_t>(length)); });
  return Napi::Number::New(info.Env(), static_cast<double>(n));
}

Napi::Value ShmPeerGone(const Napi::CallbackInfo& info) {
  comm::ShmMesh& mesh = shmArg(info);
  return Napi::String::New(info.Env(), mesh.peerGone(peerArg(info, mesh.size(), mesh.rank())));
}

Napi::Value ShmDoorbell(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), shmArg(info).doorbell()); }

/** Sleeps on a libuv pool thread until the doorbell moves (or the timeout), then resolves. */
class DoorbellWait : public Napi::AsyncWorker {
 public:
  DoorbellWait(Napi::Env env, std::shared_ptr<comm::ShmMesh> mesh, uint32_t seen, uint64_t timeoutNs)
      : Napi::AsyncWorker(env, "tessera:shm-doorbell"), mesh_(std::move(mesh)), seen_(seen), timeoutNs_(timeoutNs), deferred_(Napi::Promise::Deferred::New(env)) {}
  void Execute() override {
    if (mesh_->doorbell() == seen_) mesh_->sleepOnDoorbell(seen_, timeoutNs_);
  }
  void OnOK() override { deferred_.Resolve(Env().Undefined()); }
  Napi::Promise Promise() const { return deferred_.Promise(); }

 private:
  std::shared_ptr<comm::ShmMesh> mesh_;
  uint32_t seen_;
  uint64_t timeoutNs_;
  Napi::Promise::Deferred deferred_;
};

Napi::Value ShmWait(const Napi::CallbackInfo& info) {
  MeshBox& box = meshArg(info);
  if (!box.shm) throw Napi::TypeError::New(info.Env(), "expected a shared-memory mesh");
  const uint32_t seen = static_cast<uint32_t>(numberArg(info, 1, "seen"));
  const double timeoutMs = numberArg(info, 2, "timeoutMs");
  auto* wait = new DoorbellWait(info.Env(), box.shm, seen, static_cast<uint64_t>(timeoutMs * 1e6));
  Napi::Promise promise = wait->Promise();
  wait->Queue();
  return promise;
}

Napi::Value ShmClose(const Napi::CallbackInfo& info) {
  shmArg(info).close();
  return info.Env().Undefined();
}

Napi::Value ShmSweep(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), comm::sweepStaleSegments(stringArg(info, 0, "dir"))); }

// --- sockets ---------------------------------------------------------------

Napi::Value SocketCreate(const Napi::CallbackInfo& info) {
  const int rank = intArg(info, 0, "rank");
  const int size = intArg(info, 1, "size");
  return guarded(info.Env(), [&] { return wrapMesh(info.Env(), new MeshBox{nullptr, std::make_shared<comm::SocketMesh>(rank, size)}); });
}

comm::SocketMesh& socketArg(const Napi::CallbackInfo& info) {
  MeshBox& box = meshArg(info);
  if (!box.sockets) throw Napi::TypeError::New(info.Env(), "expected a socket mesh");
  return *box.sockets;
}

/** socketListen(mesh, unixDomain, hostOrPath) → the port (TCP) or the path. */
Napi::Value SocketListen(const Napi::CallbackInfo& info) {
  comm::SocketMesh& mesh = socketArg(info);
  const bool unixDomain = info[1].ToBoolean();
  const std::string where = stringArg(info, 2, "hostOrPath");
  return guarded(info.Env(), [&] { return Napi::String::New(info.Env(), mesh.listen(unixDomain, where)); });
}

Napi::Value SocketConnect(const Napi::CallbackInfo& info) {
  comm::SocketMesh& mesh = socketArg(info);
  if (!info[1].IsArray()) throw Napi::TypeError::New(info.Env(), "endpoints must be an array");
  Napi::Array list = info[1].As<Napi::Array>();
  std::vector<std::string> endpoints;
  for (uint32_t i = 0; i < list.Length(); i++) endpoints.push_back(list.Get(i).ToString().Utf8Value());
  const std::string token = stringArg(info, 2, "token");
  const double timeoutMs = numberArg(info, 3, "timeoutMs");
  guarded(info.Env(), [&] { mesh.connect(endpoints, token, static_cast<uint64_t>(timeoutMs * 1e6)); });
  return info.Env().Undefined();
}

Napi::Value SocketClose(const Napi::CallbackInfo& info) {
  socketArg(info).close();
  return info.Env().Undefined();
}

// --- both kinds --------------------------------------------------------------

/** setStall(mesh, ms): a wait that sees no progress for `ms` fails (0 = never). */
Napi::Value SetStall(const Napi::CallbackInfo& info) {
  MeshBox& box = meshArg(info);
  const uint64_t ns = static_cast<uint64_t>(numberArg(info, 1, "ms") * 1e6);
  if (box.shm) box.shm->policy().stallNs = ns;
  if (box.sockets) box.sockets->policy().stallNs = ns;
  return info.Env().Undefined();
}

/** setTag(mesh, generation): the plan generation the mesh serves, for abortCollectives(generation). */
Napi::Value SetTag(const Napi::CallbackInfo& info) {
  MeshBox& box = meshArg(info);
  const double tag = numberArg(info, 1, "generation");
  if (!(tag >= 0) || tag > 9007199254740991.0) throw Napi::RangeError::New(info.Env(), "generation must be a non-negative integer");
  if (box.shm) box.shm->policy().tag = static_cast<uint64_t>(tag);
  if (box.sockets) box.sockets->policy().tag = static_cast<uint64_t>(tag);
  return info.Env().Undefined();
}

/** stream(mesh, peer, frame, landing, count, sending, receiving): the raw link, blocking. */
Napi::Value Stream(const Napi::CallbackInfo& info) {
  MeshBox& box = meshArg(info);
  const int peer = intArg(info, 1, "peer");
  Napi::Uint8Array frame = bytesAt(info, 2);
  Napi::Uint8Array landing = bytesAt(info, 3);
  const int count = intArg(info, 4, "count");
  const bool sending = info[5].ToBoolean();
  const bool receiving = info[6].ToBoolean();
  if (frame.ByteLength() != landing.ByteLength()) throw Napi::RangeError::New(info.Env(), "frame and landing must have one length");
  guarded(info.Env(), [&] {
    if (box.shm) {
      box.shm->stream(peer, frame.Data(), landing.Data(), frame.ByteLength(), count, sending, receiving);
      return;
    }
    comm::CommStats stats;
    comm::Exchange exchange(*box.sockets, stats);
    int pending = 0;
    const uint64_t bytes = frame.ByteLength();
    uint8_t* into = landing.Data();
    for (int i = 0; i < count; i++) {
      if (sending) {
        pending++;
        exchange.send(peer, frame.Data(), bytes, &pending);
      }
      if (receiving) {
        pending++;
        exchange.receiveExactly(peer, into, bytes, &pending);
      }
    }
    exchange.runUntil([&] { return pending == 0; }, "streaming frames");
  });
  return info.Env().Undefined();
}

/** aborted(mesh): whether an abort reached the mesh (its waits fail). */
Napi::Value Aborted(const Napi::CallbackInfo& info) {
  MeshBox& box = meshArg(info);
  const comm::WaitPolicy& policy = box.shm ? box.shm->policy() : box.sockets->policy();
  return Napi::Boolean::New(info.Env(), comm::aborted(policy));
}

/** abortCollectives(): every mesh made so far; abortCollectives(generation): the meshes tagged up to it, even ones made later. */
Napi::Value AbortCollectives(const Napi::CallbackInfo& info) {
  if (info.Length() > 0 && info[0].IsNumber()) {
    const double tag = info[0].As<Napi::Number>().DoubleValue();
    if (tag >= 1) comm::abortTagged(static_cast<uint64_t>(tag));
    return info.Env().Undefined();
  }
  comm::abortAll();
  return info.Env().Undefined();
}

}  // namespace

void addCommBindings(Napi::Env env, Napi::Object exports) {
  bindings::addGroupBindings(env, exports);
  exports.Set("commShmCreate", Napi::Function::New(env, ShmCreate));
  exports.Set("commShmAttach", Napi::Function::New(env, ShmAttach));
  exports.Set("commShmRingWrite", Napi::Function::New(env, ShmRingWrite));
  exports.Set("commShmRingRead", Napi::Function::New(env, ShmRingRead));
  exports.Set("commShmPeerGone", Napi::Function::New(env, ShmPeerGone));
  exports.Set("commShmDoorbell", Napi::Function::New(env, ShmDoorbell));
  exports.Set("commShmWait", Napi::Function::New(env, ShmWait));
  exports.Set("commShmClose", Napi::Function::New(env, ShmClose));
  exports.Set("commShmSweep", Napi::Function::New(env, ShmSweep));
  exports.Set("commSocketCreate", Napi::Function::New(env, SocketCreate));
  exports.Set("commSocketListen", Napi::Function::New(env, SocketListen));
  exports.Set("commSocketConnect", Napi::Function::New(env, SocketConnect));
  exports.Set("commSocketClose", Napi::Function::New(env, SocketClose));
  exports.Set("commSetStall", Napi::Function::New(env, SetStall));
  exports.Set("commSetTag", Napi::Function::New(env, SetTag));
  exports.Set("commStream", Napi::Function::New(env, Stream));
  exports.Set("commAborted", Napi::Function::New(env, Aborted));
  exports.Set("abortCollectives", Napi::Function::New(env, AbortCollectives));
}

}  // namespace tessera
