// The collectives' bindings: a group over a mesh, its all-reduce,
// all-gathers and all-to-all (synchronous, on the calling thread), the JS
// views of a shared-memory group's area, and its time counters.
#include <cstring>
#include <string>
#include <vector>

#include "binding-args.h"
#include "socket-group.h"

namespace tessera::bindings {
namespace {

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
      if (length % (rows * sizeof(float)) != 0) throw CommError("TESSERA_ERR_PROTOCOL", "a member's column slice is not " + std::to_string(rows) + " whole rows");
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

/** stats(group, out Float64Array[4 to 6]): calls, total ns, wait ns, bytes sent (then compute ns inside collectives, shared rows computed). */
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
  if (out.ElementLength() > 4) out[4] = static_cast<double>(s.computeNs);
  if (out.ElementLength() > 5) out[5] = static_cast<double>(s.sharedRows);
  return info.Env().Undefined();
}

}  // namespace

void addGroupBindings(Napi::Env env, Napi::Object exports) {
  exports.Set("commGroup", Napi::Function::New(env, MakeGroup));
  exports.Set("commAllReduce", Napi::Function::New(env, AllReduce));
  exports.Set("commAllGather", Napi::Function::New(env, AllGather));
  exports.Set("commAllGatherColumns", Napi::Function::New(env, AllGatherColumns));
  exports.Set("commAllToAll", Napi::Function::New(env, AllToAll));
  exports.Set("commAreas", Napi::Function::New(env, Areas));
  exports.Set("commNextHalf", Napi::Function::New(env, NextHalf));
  exports.Set("commStats", Napi::Function::New(env, Stats));
}

}  // namespace tessera::bindings
