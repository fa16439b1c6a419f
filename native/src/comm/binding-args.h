// What the comm bindings share (comm-bindings.cc: meshes; group-bindings.cc:
// collectives): the handle types behind the JS externals, argument checks
// that throw a TypeError naming the argument, and `guarded`, which turns a
// native failure into a JS error carrying its TESSERA_ERR_* code.
#pragma once
#include <napi.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "group.h"
#include "shm-group.h"
#include "shm-mesh.h"
#include "socket-mesh.h"

namespace tessera::bindings {

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

[[noreturn]] inline void throwCoded(Napi::Env env, const char* code, const std::string& message) {
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

inline MeshBox& meshArg(const Napi::CallbackInfo& info) {
  if (!info[0].IsExternal()) throw Napi::TypeError::New(info.Env(), "expected a mesh handle");
  return *info[0].As<Napi::External<MeshBox>>().Data();
}

inline GroupBox& groupArg(const Napi::CallbackInfo& info) {
  if (!info[0].IsExternal()) throw Napi::TypeError::New(info.Env(), "expected a group handle");
  return *info[0].As<Napi::External<GroupBox>>().Data();
}

inline comm::ShmMesh& shmArg(const Napi::CallbackInfo& info) {
  MeshBox& box = meshArg(info);
  if (!box.shm) throw Napi::TypeError::New(info.Env(), "expected a shared-memory mesh");
  return *box.shm;
}

inline int intArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (!info[index].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  return info[index].As<Napi::Number>().Int32Value();
}

inline double numberArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (!info[index].IsNumber()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a number");
  return info[index].As<Napi::Number>().DoubleValue();
}

inline std::string stringArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (!info[index].IsString()) throw Napi::TypeError::New(info.Env(), std::string(name) + " must be a string");
  return info[index].As<Napi::String>().Utf8Value();
}

inline Napi::Uint8Array bytesAt(const Napi::CallbackInfo& info, size_t index) {
  if (!info[index].IsTypedArray() || info[index].As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) throw Napi::TypeError::New(info.Env(), "expected a Uint8Array");
  return info[index].As<Napi::Uint8Array>();
}

inline Napi::Float32Array floatsAt(const Napi::CallbackInfo& info, size_t index) {
  if (!info[index].IsTypedArray() || info[index].As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) throw Napi::TypeError::New(info.Env(), "expected a Float32Array");
  return info[index].As<Napi::Float32Array>();
}

/** [offset, offset + length) must lie inside `array`. */
inline void checkRange(Napi::Env env, const Napi::Uint8Array& array, double offset, double length) {
  if (!(offset >= 0 && length >= 0 && offset + length <= static_cast<double>(array.ByteLength()))) throw Napi::RangeError::New(env, "range outside the buffer");
}

inline Napi::Value wrapMesh(Napi::Env env, MeshBox* box) {
  return Napi::External<MeshBox>::New(env, box, [](Napi::Env, MeshBox* b) { delete b; });
}

/** Registers the group functions (group-bindings.cc). */
void addGroupBindings(Napi::Env env, Napi::Object exports);

}  // namespace tessera::bindings
