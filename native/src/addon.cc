// The Node-API surface of the native backend: thin wrappers that take typed
// arrays, call the kernels synchronously, and fill the caller's typed arrays
// (the KV cache's bindings are in kv-bindings.cc). Shapes
// are validated in TypeScript (src/backend/native/); the checks here only
// keep a wrong call from touching memory it does not own.
#include <napi.h>

#include <algorithm>
#include <map>

#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "bandwidth.h"
#include "comm/comm-bindings.h"
#include "huge-bytes.h"
#include "remote-write.h"
#include "shared-map.h"
#include "shared-rows-bindings.h"
#include "cpu.h"
#include "kv-bindings.h"
#include "matmul.h"
#include "napi-args.h"
#include "ops.h"
#include "thread-pool.h"
#include "tile-file.h"
#include "weight.h"

namespace tessera {
namespace {

/** Pools are shared by thread count, so many backends do not mean many threads. */
std::shared_ptr<ThreadPool> sharedPool(int threads) {
  static std::mutex mutex;
  static std::map<int, std::weak_ptr<ThreadPool>> pools;
  std::lock_guard<std::mutex> lock(mutex);
  std::shared_ptr<ThreadPool> pool = pools[threads].lock();
  if (!pool) {
    pool = std::make_shared<ThreadPool>(threads);
    pools[threads] = pool;
  }
  return pool;
}

Napi::Value wrapWeight(Napi::Env env, NativeWeight* weight) {
  const int64_t owned = static_cast<int64_t>(weight->ownedBytes());
  Napi::MemoryManagement::AdjustExternalMemory(env, owned);
  return Napi::External<NativeWeight>::New(env, weight, [owned](Napi::Env finalizeEnv, NativeWeight* w) {
    Napi::MemoryManagement::AdjustExternalMemory(finalizeEnv, -owned);
    delete w;
  });
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("physicalCores", physicalCoreCount());
  Napi::Array supported = Napi::Array::New(info.Env());
  for (const KernelTable* table : supportedKernelTables()) supported.Set(supported.Length(), table->isa);
  out.Set("supportedIsas", supported);
  out.Set("tileFileVersion", kTileFileVersion);
  return out;
}

/** createContext(threads, isa) → { context, isa, threads }; 0 threads = physical cores, "auto" = best ISA. */
Napi::Value CreateContext(const Napi::CallbackInfo& info) {
  const int requested = static_cast<int>(number(info, 0, "threads"));
  const std::string isa = info.Length() > 1 && info[1].IsString() ? info[1].As<Napi::String>().Utf8Value() : "auto";
  Context* context = new Context();
  try {
    context->kernels = selectKernelTable(isa);
  } catch (const std::runtime_error& error) {
    delete context;
    throw Napi::Error::New(info.Env(), error.what());
  }
  context->pool = sharedPool(requested > 0 ? requested : physicalCoreCount());
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("isa", context->kernels->isa);
  out.Set("threads", context->pool->threads());
  out.Set("context", Napi::External<Context>::New(info.Env(), context, [](Napi::Env, Context* c) { delete c; }));
  return out;
}

/** loadWeight(context, dtype, rows, cols, bytes, pack): packs only where the context's kernels have fast tiles */
Napi::Value LoadWeight(const Napi::CallbackInfo& info) {
  const Context& context = contextArg(info);
  const DType dtype = dtypeArg(info, 1);
  const int64_t rows = static_cast<int64_t>(number(info, 2, "rows"));
  const int64_t cols = static_cast<int64_t>(number(info, 3, "cols"));
  Napi::Uint8Array bytes = bytesArg(info, 4);
  const bool pack = info.Length() > 5 && info[5].ToBoolean().Value() && context.kernels->fastTiles;
  const size_t expected = static_cast<size_t>(cols / blockElements(dtype)) * blockBytes(dtype) * rows;
  require(bytes.ByteLength() == expected, info.Env(), "weight bytes do not match its shape");
  try {
    return wrapWeight(info.Env(), NativeWeight::copy(dtype, rows, cols, bytes.Data(), bytes.ByteLength(), pack, *context.pool));
  } catch (const std::runtime_error& error) {
    throw Napi::Error::New(info.Env(), error.what());
  }
}

/** mapWeight(context, dtype, rows, cols, path, byteOffset, pack, tileFile?) */
Napi::Value MapWeight(const Napi::CallbackInfo& info) {
  const Context& context = contextArg(info);
  const DType dtype = dtypeArg(info, 1);
  const int64_t rows = static_cast<int64_t>(number(info, 2, "rows"));
  const int64_t cols = static_cast<int64_t>(number(info, 3, "cols"));
  require(info.Length() > 4 && info[4].IsString(), info.Env(), "path must be a string");
  const std::string path = info[4].As<Napi::String>().Utf8Value();
  const uint64_t offset = static_cast<uint64_t>(number(info, 5, "byteOffset"));
  const bool pack = info.Length() > 6 && info[6].ToBoolean().Value() && context.kernels->fastTiles;
  const std::string tileFile = info.Length() > 7 && info[7].IsString() ? info[7].As<Napi::String>().Utf8Value() : std::string();
  try {
    return wrapWeight(info.Env(), NativeWeight::map(dtype, rows, cols, path, offset, pack, *context.pool, tileFile));
  } catch (const std::runtime_error& error) {
    throw Napi::Error::New(info.Env(), error.what());
  }
}

/** weightLayout(weight) → "stored" (the file's layout), "tiles" (packed in memory) or "saved-tiles" (mapped from a tile file) */
Napi::Value WeightLayout(const Napi::CallbackInfo& info) {
  const NativeWeight& weight = weightArg(info, 0);
  const char* layout = weight.tiles() == nullptr ? "stored" : weight.mapped() ? "saved-tiles" : "tiles";
  return Napi::String::New(info.Env(), layout);
}

/** readRows(context, weight, rowStart, rowEnd, out [rows, cols]) → out */
Napi::Value ReadRows(const Napi::CallbackInfo& info) {
  const NativeWeight& weight = weightArg(info, 1);
  const int64_t start = static_cast<int64_t>(number(info, 2, "rowStart"));
  const int64_t end = static_cast<int64_t>(number(info, 3, "rowEnd"));
  require(0 <= start && start <= end && end <= weight.rows(), info.Env(), "rows out of range");
  Napi::Float32Array out = outputArg(info, 4, static_cast<size_t>((end - start) * weight.cols()));
  for (int64_t r = start; r < end; r++) weight.dequantizeRow(r, out.Data() + (r - start) * weight.cols());
  return out;
}

/** embed(context, weight, ids, out [numTokens, cols]) → out */
Napi::Value Embed(const Napi::CallbackInfo& info) {
  const NativeWeight& weight = weightArg(info, 1);
  Napi::Int32Array ids = ints(info, 2, "ids");
  Napi::Float32Array out = outputArg(info, 3, ids.ElementLength() * static_cast<size_t>(weight.cols()));
  for (size_t t = 0; t < ids.ElementLength(); t++) {
    require(ids[t] >= 0 && ids[t] < weight.rows(), info.Env(), "token id outside the embedding table");
    weight.dequantizeRow(ids[t], out.Data() + t * weight.cols());
  }
  return out;
}

/** matmul(context, weight, x, numTokens, floatActivations, out [numTokens, rows]) → out */
Napi::Value Matmul(const Napi::CallbackInfo& info) {
  const NativeWeight& weight = weightArg(info, 1);
  Napi::Float32Array x = floats(info, 2, "x");
  const int numTokens = static_cast<int>(number(info, 3, "numTokens"));
  require(numTokens >= 0 && x.ElementLength() == static_cast<size_t>(numTokens * weight.cols()), info.Env(),
          "x does not hold numTokens rows of the weight's columns");
  Napi::Float32Array out = outputArg(info, 5, static_cast<size_t>(numTokens * weight.rows()));
  const Context& r = contextArg(info);
  const bool floatActivations = info.Length() > 4 && info[4].ToBoolean().Value();
  if (numTokens > 0) matmul(*r.kernels, *r.pool, weight, x.Data(), numTokens, floatActivations, out.Data());
  return out;
}

/** matmulMany(context, [weights], x, numTokens, floatActivations, [outs]) → outs: one job, each out as matmul's */
Napi::Value MatmulMany(const Napi::CallbackInfo& info) {
  require(info.Length() > 5 && info[1].IsArray() && info[5].IsArray(), info.Env(), "weights and outs must be arrays");
  Napi::Array weights = info[1].As<Napi::Array>();
  Napi::Array outs = info[5].As<Napi::Array>();
  require(weights.Length() == outs.Length() && weights.Length() > 0, info.Env(), "weights and outs differ in length");
  Napi::Float32Array x = floats(info, 2, "x");
  const int numTokens = static_cast<int>(number(info, 3, "numTokens"));
  std::vector<MatmulTarget> targets;
  for (uint32_t i = 0; i < weights.Length(); i++) {
    Napi::Value w = weights[i];
    Napi::Value o = outs[i];
    require(w.IsExternal(), info.Env(), "weight must be a native weight handle");
    const NativeWeight* weight = w.As<Napi::External<NativeWeight>>().Data();
    require(numTokens >= 0 && x.ElementLength() == static_cast<size_t>(numTokens * weight->cols()), info.Env(),
            "x does not hold numTokens rows of every weight's columns");
    require(o.IsTypedArray() && o.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array &&
                o.As<Napi::Float32Array>().ElementLength() == static_cast<size_t>(numTokens * weight->rows()),
            info.Env(), "out has the wrong length");
    targets.push_back({weight, o.As<Napi::Float32Array>().Data()});
  }
  const Context& r = contextArg(info);
  const bool floatActivations = info[4].ToBoolean().Value();
  matmulMany(*r.kernels, *r.pool, targets.data(), static_cast<int>(targets.size()), x.Data(), numTokens, floatActivations);
  return outs;
}

/** rmsNorm(context, x, weight, numRows, eps, out) → out */
Napi::Value RmsNorm(const Napi::CallbackInfo& info) {
  Napi::Float32Array x = floats(info, 1, "x");
  const NativeWeight& weight = weightArg(info, 2);
  const int numRows = static_cast<int>(number(info, 3, "numRows"));
  const float eps = static_cast<float>(number(info, 4, "eps"));
  const int dim = static_cast<int>(weight.rows() * weight.cols());
  require(x.ElementLength() == static_cast<size_t>(numRows) * dim, info.Env(), "x does not hold numRows rows of dim");
  Napi::Float32Array out = outputArg(info, 5, x.ElementLength());
  const Context& r = contextArg(info);
  rmsNormRows(*r.kernels, *r.pool, x.Data(), weight.floats(), numRows, dim, eps, out.Data());
  return out;
}

/** addBias(context, x, weight, numRows), in place */
Napi::Value AddBias(const Napi::CallbackInfo& info) {
  Napi::Float32Array x = floats(info, 1, "x");
  const NativeWeight& weight = weightArg(info, 2);
  const int numRows = static_cast<int>(number(info, 3, "numRows"));
  const size_t dim = static_cast<size_t>(weight.rows() * weight.cols());
  require(x.ElementLength() == numRows * dim, info.Env(), "x does not hold numRows rows of the bias");
  const Context& r = contextArg(info);
  for (int row = 0; row < numRows; row++) r.kernels->add(x.Data() + row * dim, weight.floats(), dim);
  return info.Env().Undefined();
}

/** rope(context, x, positions, numHeads, headDim, ropeDims, halves, inverseFrequencies), in place */
Napi::Value Rope(const Napi::CallbackInfo& info) {
  Napi::Float32Array x = floats(info, 1, "x");
  Napi::Int32Array positions = ints(info, 2, "positions");
  const int numHeads = static_cast<int>(number(info, 3, "numHeads"));
  const int headDim = static_cast<int>(number(info, 4, "headDim"));
  const int ropeDims = static_cast<int>(number(info, 5, "ropeDims"));
  const bool halves = info.Length() > 6 && info[6].ToBoolean().Value();
  Napi::Float32Array frequencies = floats(info, 7, "inverseFrequencies");
  require(x.ElementLength() == positions.ElementLength() * numHeads * headDim && ropeDims <= headDim &&
              frequencies.ElementLength() >= static_cast<size_t>(ropeDims / 2),
          info.Env(), "rope shapes do not match");
  ropeInPlace(*contextArg(info).pool, x.Data(), positions.Data(), static_cast<int>(positions.ElementLength()), numHeads, headDim,
              ropeDims, halves, frequencies.Data());
  return info.Env().Undefined();
}

/**
 * Every position lies in the block table and maps to a block inside a pool of
 * `poolFloats`; with `wholePrefix`, so do all blocks up to the last position
 * (attention reads them all).
 */
/** siluMul(context, gate, up, out) → out */
Napi::Value SiluMul(const Napi::CallbackInfo& info) {
  Napi::Float32Array gate = floats(info, 1, "gate");
  Napi::Float32Array up = floats(info, 2, "up");
  require(gate.ElementLength() == up.ElementLength(), info.Env(), "gate and up differ in length");
  Napi::Float32Array out = outputArg(info, 3, gate.ElementLength());
  const Context& r = contextArg(info);
  siluMulAll(*r.kernels, *r.pool, gate.Data(), up.Data(), gate.ElementLength(), out.Data());
  return out;
}

/** addInPlace(context, a, b): a += b */
Napi::Value AddInPlace(const Napi::CallbackInfo& info) {
  Napi::Float32Array a = floats(info, 1, "a");
  Napi::Float32Array b = floats(info, 2, "b");
  require(a.ElementLength() == b.ElementLength(), info.Env(), "a and b differ in length");
  const Context& r = contextArg(info);
  addAll(*r.kernels, *r.pool, a.Data(), b.Data(), a.ElementLength());
  return info.Env().Undefined();
}

/** memoryBandwidth(context, bytesPerArray, repeats) → GB/s of a STREAM triad on the context's threads */
Napi::Value MemoryBandwidth(const Napi::CallbackInfo& info) {
  const Context& r = contextArg(info);
  const size_t bytes = static_cast<size_t>(number(info, 1, "bytesPerArray"));
  const int repeats = static_cast<int>(number(info, 2, "repeats"));
  return Napi::Number::New(info.Env(), measureTriadBandwidth(*r.pool, bytes, repeats));
}

/**
 * Large activations (megabytes per op in a prefill) would otherwise be
 * mmapped fresh and unmapped on free by glibc, and fresh pages fault in at
 * microseconds per 4 KiB here. Serving from the heap lets freed memory be
 * reused. Process-wide, set once.
 */
void keepLargeAllocations() {
#if defined(__GLIBC__)
  static std::once_flag once;
  std::call_once(once, [] {
    mallopt(M_MMAP_THRESHOLD, 256 << 20);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
  });
#endif
}

}  // namespace

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  keepLargeAllocations();
  exports.Set("info", Napi::Function::New(env, Info));
  exports.Set("weightLayout", Napi::Function::New(env, WeightLayout));
  exports.Set("createContext", Napi::Function::New(env, CreateContext));
  exports.Set("loadWeight", Napi::Function::New(env, LoadWeight));
  exports.Set("mapWeight", Napi::Function::New(env, MapWeight));
  exports.Set("readRows", Napi::Function::New(env, ReadRows));
  exports.Set("embed", Napi::Function::New(env, Embed));
  exports.Set("matmul", Napi::Function::New(env, Matmul));
  exports.Set("matmulMany", Napi::Function::New(env, MatmulMany));
  exports.Set("rmsNorm", Napi::Function::New(env, RmsNorm));
  exports.Set("addBias", Napi::Function::New(env, AddBias));
  exports.Set("rope", Napi::Function::New(env, Rope));
  exports.Set("siluMul", Napi::Function::New(env, SiluMul));
  addKvBindings(env, exports);
  addCommBindings(env, exports);
  addSharedRowsBindings(env, exports);
  exports.Set("addInPlace", Napi::Function::New(env, AddInPlace));
  exports.Set("memoryBandwidth", Napi::Function::New(env, MemoryBandwidth));
  exports.Set("hugeBytes", Napi::Function::New(env, HugeBytes));
  exports.Set("mapShared", Napi::Function::New(env, MapShared));
  exports.Set("remoteWrite", Napi::Function::New(env, RemoteWrite));
  exports.Set("addressOf", Napi::Function::New(env, AddressOf));
  exports.Set("peerPid", Napi::Function::New(env, PeerPid));
  return exports;
}

}  // namespace tessera

static Napi::Object InitTessera(Napi::Env env, Napi::Object exports) { return tessera::Init(env, exports); }

NODE_API_MODULE(tessera_native, InitTessera)
