// The bindings of the paged KV cache: writeKv, writeKvBatch, attention and
// attentionBatch over f32 or f16 pools, with every block index and position
// checked before a kernel touches the pool.
#pragma once
#include <napi.h>

namespace tessera {

void addKvBindings(Napi::Env env, Napi::Object exports);

}  // namespace tessera
