// hugeBytes(length) → Uint8Array on 2 MiB pages (huge-bytes.cc).
#pragma once
#include <napi.h>

namespace tessera {

Napi::Value HugeBytes(const Napi::CallbackInfo& info);

}  // namespace tessera
