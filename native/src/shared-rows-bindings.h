// The binding of shared rows (comm/row-sharing.cc): a projection two ranks
// on one host split as they compute, with the backend's kernels.
#pragma once
#include <napi.h>

namespace tessera {

void addSharedRowsBindings(Napi::Env env, Napi::Object exports);

}  // namespace tessera
