#include "napi-args.h"

namespace tessera {

void require(bool condition, const Napi::Env& env, const std::string& message) {
  if (!condition) throw Napi::TypeError::New(env, "tessera native: " + message);
}

Napi::Uint8Array bytesArg(const Napi::CallbackInfo& info, size_t index) {
  require(info.Length() > index && info[index].IsTypedArray() &&
              info[index].As<Napi::TypedArray>().TypedArrayType() == napi_uint8_array,
          info.Env(), "bytes must be a Uint8Array");
  return info[index].As<Napi::Uint8Array>();
}

Napi::Float32Array floats(const Napi::CallbackInfo& info, size_t index, const char* name) {
  require(info.Length() > index && info[index].IsTypedArray() &&
              info[index].As<Napi::TypedArray>().TypedArrayType() == napi_float32_array,
          info.Env(), std::string(name) + " must be a Float32Array");
  return info[index].As<Napi::Float32Array>();
}

Napi::Int32Array ints(const Napi::CallbackInfo& info, size_t index, const char* name) {
  require(info.Length() > index && info[index].IsTypedArray() &&
              info[index].As<Napi::TypedArray>().TypedArrayType() == napi_int32_array,
          info.Env(), std::string(name) + " must be an Int32Array");
  return info[index].As<Napi::Int32Array>();
}

Napi::Float32Array outputArg(const Napi::CallbackInfo& info, size_t index, size_t length) {
  Napi::Float32Array out = floats(info, index, "out");
  require(out.ElementLength() == length, info.Env(), "out has the wrong length");
  return out;
}

double number(const Napi::CallbackInfo& info, size_t index, const char* name) {
  require(info.Length() > index && info[index].IsNumber(), info.Env(), std::string(name) + " must be a number");
  return info[index].As<Napi::Number>().DoubleValue();
}

NativeWeight& weightArg(const Napi::CallbackInfo& info, size_t index) {
  require(info.Length() > index && info[index].IsExternal(), info.Env(), "weight must be a native weight handle");
  return *info[index].As<Napi::External<NativeWeight>>().Data();
}

Context& contextArg(const Napi::CallbackInfo& info) {
  require(info.Length() > 0 && info[0].IsExternal(), info.Env(), "the first argument must be a native context");
  return *info[0].As<Napi::External<Context>>().Data();
}

DType dtypeArg(const Napi::CallbackInfo& info, size_t index) {
  const int code = static_cast<int>(number(info, index, "dtype"));
  require(code >= 0 && code <= static_cast<int>(DType::Q6_K), info.Env(), "unknown dtype code");
  return static_cast<DType>(code);
}

}  // namespace tessera
