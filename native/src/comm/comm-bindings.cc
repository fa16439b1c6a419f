#include "comm-bindings.h"

#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "exchange.h"
#include "shm-group.h"
#include "shm-mesh.h"
#include "socket-group.h"
#include "socket-mesh.h"

namespace tessera {
namespace {

using comm::CommError;

/** A mesh handle: one of the two kinds. */
struct MeshBox {
  std::shared_ptr<comm::ShmMesh> shm;
  std::shared_ptr<comm::SocketMesh> sockets;
};

struct GroupBox {
  std::unique_ptr<comm::Group> group;
  /** Set for shm groups: the halves JS views of the area point into. */
  comm::ShmGroup* shm = nullptr;
  std::shared_ptr<comm::ShmMesh> shmMesh;
};

[[noreturn]] void throwCoded(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message);
  error.Value().Set("code", Napi::String::New(env, code));
  throw error;
}

/** Runs `body`, turning native failures into JS errors that carry a TESSERA_ERR_* code. */
template <class Body>
auto guarded(Napi::Env env, Body body) -> decltype(body()) {
  try {
    return body();
  } catch (const CommError& error) {
    throwCoded(env, error.code, error.what());
  } catch (const Napi::Error&) {
    throw;
  } catch (const std::exception& error) {
    throwCoded(env, "TESSERA_ERR_INTERNAL", error.what());
  }
}

MeshBox& meshArg(const Napi::CallbackInfo& info) {
  if (!info[0].IsExternal()) throw Napi::TypeError::New(info.Env(), "expected a mesh handle");
  return *info[0].As<Napi::External<MeshBox>>().Data();
}

GroupBox& groupArg(const Napi::CallbackInfo& info) {
  if (!info[0].IsExternal()) throw Napi::TypeError::New(info.Env(), "expected a group handle");
  return *info[0].As<Napi::External<GroupBox>>().Data();
}

comm::ShmMesh& shmArg(const Napi::CallbackInfo& info) {
  MeshBox& box = meshArg(info);
  if (!box.shm) throw Napi::TypeError::New(info.Env(), "expected a shared-memory mesh");
  return *box.shm;
}

int intArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (!info[index].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  return info[index].As<Napi::Number>().Int32Value();
}

double numberArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (!info[index].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  return info[index].As<Napi::Number>().DoubleValue();
}

std::string stringArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (!info[index].IsString()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a string");
  return info[index].As<Napi::String>().Utf8Value();
}

Napi::Uint8Array bytesAt(const Napi::CallbackInfo& info, size_t index) {
  if (!info[index].IsTypedArray() || info[index].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) throw Napi::TypeError::New(info.Env(), "expected a Uint8Array");
  return info[index].As<Napi::Uint8Array>();
}

Napi::Float32Array floatsAt(const Napi::CallbackInfo& info, size_t index) {
  if (!info[index].IsTypedArray() || info[index].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) throw Napi::TypeError::New(info.Env(), "expected a Float32Array");
  return info[index].As<Napi::Float32Array>();
}

/** [offset, offset + length) must lie inside `array`. */
void checkRange(Napi::Env env, const Napi::Uint8Array& array, double offset, double length) {
  if (!(offset >= 0 && length >= 0 && offset + length <= static_cast<double>(array.ByteLength()))) throw Napi::RangeError::New(env, "range outside the buffer");
}

Napi::Value wrapMesh(Napi::Env env, MeshBox* box) {
  return Napi::External<MeshBox>::New(env, box, [](Napi::Env, MeshBox* b) { delete b; });
}

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
  const size_t n = mesh.ringWrite(peer, bytes.Data() + static_cast<size_t>(offset), static_cast<size_t>(length));
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
  const size_t n = mesh.ringRead(peer, into.Data() + static_cast<size_t>(offset), static_cast<size_t>(length));
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
        exchange.receive(peer, [into](uint64_t) { return into; }, &pending);
      }
    }
    exchange.runUntil([&] { return pending == 0; }, "streaming frames");
  });
  return info.Env().Undefined();
}

/** group(mesh, members Int32Array, slot) → a group handle. */
Napi::Value MakeGroup(const Napi::CallbackInfo& info) {
  MeshBox& box = meshArg(info);
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) throw Napi::TypeError::New(info.Env(), "members must be an Int32Array");
  Napi::Int32Array list = info[1].As<Napi::Int32Array>();
  std::vector<int> members(list.Data(), list.Data() + list.ElementLength());
  const int slot = intArg(info, 2, "slot");
  return guarded(info.Env(), [&] {
    auto* out = new GroupBox();
    if (box.shm) {
      auto group = std::make_unique<comm::ShmGroup>(box.shm, members, slot);
      out->shm = group.get();
      out->shmMesh = box.shm;
      out->group = std::move(group);
    } else {
      out->group = std::make_unique<comm::SocketGroup>(box.sockets, members);
    }
    return Napi::External<GroupBox>::New(info.Env(), out, [](Napi::Env, GroupBox* g) { delete g; });
  });
}

Napi::Value AllReduce(const Napi::CallbackInfo& info) {
  GroupBox& box = groupArg(info);
  Napi::Float32Array values = floatsAt(info, 1);
  guarded(info.Env(), [&] { box.group->allReduce(values.Data(), values.ElementLength()); });
  return info.Env().Undefined();
}

/** allGather(group, mine Uint8Array) → every member's bytes, views of one new buffer, in member order. */
Napi::Value AllGather(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  GroupBox& box = groupArg(info);
  Napi::Uint8Array mine = bytesAt(info, 1);
  Napi::ArrayBuffer buffer;
  std::vector<uint64_t> lengths;
  guarded(env, [&] {
    box.group->allGather(mine.Data(), mine.ByteLength(), [&](size_t total) {
      buffer = Napi::ArrayBuffer::New(env, total);
      return static_cast<uint8_t*>(buffer.Data());
    }, lengths);
  });
  Napi::Array parts = Napi::Array::New(env, lengths.size());
  size_t at = 0;
  for (size_t m = 0; m < lengths.size(); m++) {
    parts.Set(static_cast<uint32_t>(m), Napi::Uint8Array::New(env, static_cast<size_t>(lengths[m]), buffer, at));
    at += static_cast<size_t>(lengths[m]);
  }
  return parts;
}

/** allToAll(group, parts Uint8Array[]) → what each member sent here, views of one new buffer, in member order. */
Napi::Value AllToAll(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  GroupBox& box = groupArg(info);
  if (!info[1].IsArray()) throw Napi::TypeError::New(env, "parts must be an array");
  Napi::Array list = info[1].As<Napi::Array>();
  const size_t k = static_cast<size_t>(box.group->size());
  if (list.Length() != k) throw Napi::RangeError::New(env, "all-to-all needs one part per member");
  std::vector<const uint8_t*> parts(k);
  std::vector<uint64_t> lengths(k);
  for (uint32_t j = 0; j < k; j++) {
    Napi::Value part = list.Get(j);
    if (!part.IsTypedArray() || part.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) throw Napi::TypeError::New(env, "every part must be a Uint8Array");
    Napi::Uint8Array bytes = part.As<Napi::Uint8Array>();
    parts[j] = bytes.Data();
    lengths[j] = bytes.ByteLength();
  }
  Napi::ArrayBuffer buffer;
  std::vector<uint64_t> received;
  guarded(env, [&] {
    box.group->allToAll(parts.data(), lengths.data(), [&](size_t total) {
      buffer = Napi::ArrayBuffer::New(env, total);
      return static_cast<uint8_t*>(buffer.Data());
    }, received);
  });
  Napi::Array out = Napi::Array::New(env, received.size());
  size_t at = 0;
  for (size_t m = 0; m < received.size(); m++) {
    out.Set(static_cast<uint32_t>(m), Napi::Uint8Array::New(env, static_cast<size_t>(received[m]), buffer, at));
    at += static_cast<size_t>(received[m]);
  }
  return out;
}

/** allGatherColumns(group, slice [rows, width], rows) → [rows, sum of widths], members' columns in member order. */
Napi::Value AllGatherColumns(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  GroupBox& box = groupArg(info);
  Napi::Float32Array slice = floatsAt(info, 1);
  const size_t rows = static_cast<size_t>(intArg(info, 2, "rows"));
  if (rows == 0 || slice.ElementLength() % rows != 0) throw Napi::RangeError::New(env, "the slice is not a whole number of rows");
  Napi::ArrayBuffer buffer;
  std::vector<uint8_t> partMajor;
  std::vector<uint64_t> lengths;
  guarded(env, [&] {
    box.group->allGather(reinterpret_cast<const uint8_t*>(slice.Data()), slice.ByteLength(), [&](size_t total) {
      buffer = Napi::ArrayBuffer::New(env, total);
      // One row: member-major is already column order; more rows are placed below.
      if (rows == 1) return static_cast<uint8_t*>(buffer.Data());
      partMajor.resize(total);
      return partMajor.data();
    }, lengths);
    for (uint64_t length : lengths) {
      if (length % (rows * sizeof(float)) != 0) throw CommError("TESSERA_ERR_INTERNAL", "a member's column slice is not " + std::to_string(rows) + " whole rows");
    }
  });
  const size_t totalWidth = buffer.ByteLength() / sizeof(float) / rows;
  if (rows > 1) {
    float* out = static_cast<float*>(buffer.Data());
    const float* from = reinterpret_cast<const float*>(partMajor.data());
    size_t column = 0;
    for (uint64_t length : lengths) {
      const size_t width = static_cast<size_t>(length) / sizeof(float) / rows;
      for (size_t row = 0; row < rows; row++) std::memcpy(out + row * totalWidth + column, from + row * width, width * sizeof(float));
      from += rows * width;
      column += width;
    }
  }
  return Napi::Float32Array::New(env, buffer.ByteLength() / sizeof(float), buffer, 0);
}

/** areas(group) → [half 0, half 1] as Float32Arrays over this rank's shared area, or undefined (socket groups). */
Napi::Value Areas(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  GroupBox& box = groupArg(info);
  if (!box.shm) return env.Undefined();
  Napi::Array halves = Napi::Array::New(env, 2);
  const size_t bytes = static_cast<size_t>(box.shmMesh->halfBytes());
  for (int half = 0; half < 2; half++) {
    // The view keeps the mapping alive, so a closed mesh never leaves JS pointing at unmapped memory.
    auto* keep = new std::shared_ptr<comm::Mapping>(box.shmMesh->ownMapping());
    Napi::ArrayBuffer buffer = Napi::ArrayBuffer::New(env, box.shmMesh->area(box.shmMesh->rank(), half), bytes, [](Napi::Env, void*, std::shared_ptr<comm::Mapping>* k) { delete k; }, keep);
    halves.Set(static_cast<uint32_t>(half), Napi::Float32Array::New(env, bytes / sizeof(float), buffer, 0));
  }
  return halves;
}

Napi::Value NextHalf(const Napi::CallbackInfo& info) {
  GroupBox& box = groupArg(info);
  return Napi::Number::New(info.Env(), box.shm ? box.shm->nextHalf() : -1);
}

/** stats(group, out Float64Array[4]): calls, total ns, wait ns, bytes sent. */
Napi::Value Stats(const Napi::CallbackInfo& info) {
  GroupBox& box = groupArg(info);
  if (!info[1].IsTypedArray() || info[1].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array) throw Napi::TypeError::New(info.Env(), "expected a Float64Array");
  Napi::Float64Array out = info[1].As<Napi::Float64Array>();
  if (out.ElementLength() < 4) throw Napi::RangeError::New(info.Env(), "stats need 4 slots");
  const comm::CommStats& s = box.group->stats;
  out[0] = static_cast<double>(s.calls);
  out[1] = static_cast<double>(s.totalNs);
  out[2] = static_cast<double>(s.waitNs);
  out[3] = static_cast<double>(s.bytesSent);
  return info.Env().Undefined();
}

Napi::Value AbortCollectives(const Napi::CallbackInfo& info) {
  comm::abortAll();
  return info.Env().Undefined();
}

}  // namespace

void addCommBindings(Napi::Env env, Napi::Object exports) {
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
  exports.Set("commStream", Napi::Function::New(env, Stream));
  exports.Set("commGroup", Napi::Function::New(env, MakeGroup));
  exports.Set("commAllReduce", Napi::Function::New(env, AllReduce));
  exports.Set("commAllGather", Napi::Function::New(env, AllGather));
  exports.Set("commAllGatherColumns", Napi::Function::New(env, AllGatherColumns));
  exports.Set("commAllToAll", Napi::Function::New(env, AllToAll));
  exports.Set("commAreas", Napi::Function::New(env, Areas));
  exports.Set("commNextHalf", Napi::Function::New(env, NextHalf));
  exports.Set("commStats", Napi::Function::New(env, Stats));
  exports.Set("abortCollectives", Napi::Function::New(env, AbortCollectives));
}

}  // namespace tessera
