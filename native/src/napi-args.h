// Argument checks shared by the addon's bindings (addon.cc, kv-bindings.cc):
// a malformed call throws a TypeError naming the argument instead of reading
// memory it should not.
#pragma once
#include <napi.h>

#include <memory>
#include <string>

#include "kernels/kernel-table.h"
#include "thread-pool.h"
#include "weight.h"

namespace tessera {

/** What a NativeBackend computes with: a kernel variant and a thread pool. */
struct Context {
  const KernelTable* kernels;
  std::shared_ptr<ThreadPool> pool;
};

void require(bool condition, const Napi::Env& env, const std::string& message);
Napi::Uint8Array bytesArg(const Napi::CallbackInfo& info, size_t index);
Napi::Float32Array floats(const Napi::CallbackInfo& info, size_t index, const char* name);
Napi::Int32Array ints(const Napi::CallbackInfo& info, size_t index, const char* name);
/** The caller's output array at `index`, which must hold exactly `length` floats (JS allocates it faster). */
Napi::Float32Array outputArg(const Napi::CallbackInfo& info, size_t index, size_t length);
double number(const Napi::CallbackInfo& info, size_t index, const char* name);
NativeWeight& weightArg(const Napi::CallbackInfo& info, size_t index);
Context& contextArg(const Napi::CallbackInfo& info);
DType dtypeArg(const Napi::CallbackInfo& info, size_t index);

}  // namespace tessera
