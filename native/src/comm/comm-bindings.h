// The Node-API surface of the native transports and collectives
// (src/parallel/native-comm.ts is its typed binding): shared-memory and
// socket meshes, groups, the Transport rings of ShmTransport, abort.
#pragma once
#include <napi.h>

namespace tessera {

void addCommBindings(Napi::Env env, Napi::Object exports);

}  // namespace tessera
