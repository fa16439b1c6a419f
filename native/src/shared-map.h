// mapShared(fd, length, writable) → Uint8Array over a MAP_SHARED mapping of
// an open file (shared-map.cc).
#pragma once
#include <napi.h>

namespace tessera {

Napi::Value MapShared(const Napi::CallbackInfo& info);

}  // namespace tessera
