// The Node-API surface of the native backend: thin wrappers that take typed
// arrays, call the kernels synchronously, and return new typed arrays. Shapes
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
#include "cpu.h"
#include "matmul.h"
#include <vector>
#include "ops.h"
#include "thread-pool.h"
#include "weight.h"

namespace tessera {
namespace {

/** What a NativeBackend computes with: a kernel variant and a thread pool. */
struct Context {
  const KernelTable* kernels;
  std::shared_ptr<ThreadPool> pool;
};

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

/** A KV pool: float32 values or IEEE half bits. */
struct KvPoolArg {
  void* data;
  size_t elements;
  bool half;
};

KvPoolArg kvPoolArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  require(info.Length() > index && info[index].IsTypedArray(), info.Env(), std::string(name) + " must be a typed array");
  Napi::TypedArray array = info[index].As<Napi::TypedArray>();
  const napi_typedarray_type type = array.TypedArrayType();
  require(type == napi_float32_array || type == napi_uint16_array, info.Env(),
          std::string(name) + " must be a Float32Array (f32) or a Uint16Array (f16 bits)");
  uint8_t* bytes = static_cast<uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset();
  return {bytes, array.ElementLength(), type == napi_uint16_array};
}

/** Key and value pools of one dtype and size. */
void requireSamePools(const Napi::Env& env, const KvPoolArg& keys, const KvPoolArg& values) {
  require(keys.elements == values.elements, env, "key and value pools differ in size");
  require(keys.half == values.half, env, "key and value pools differ in dtype");
}

/** writeKvRows into either kind of pool. */
void writeKvPool(const KernelTable& kernels, const KvPoolArg& pool, int blockSize, int rowSize, const int32_t* blockTable,
                 const int32_t* positions, int numTokens, const float* values) {
  if (pool.half) {
    writeKvRows(kernels, static_cast<uint16_t*>(pool.data), blockSize, rowSize, blockTable, positions, numTokens, values);
  } else {
    writeKvRows(kernels, static_cast<float*>(pool.data), blockSize, rowSize, blockTable, positions, numTokens, values);
  }
}

/** attentionSegments over either kind of pool (checked to match by requireSamePools). */
void attendPools(const Context& r, const AttentionShape& shape, const float* query, const KvPoolArg& keys,
                 const KvPoolArg& values, const KvSegmentView* segments, int numSegments, float* out) {
  if (keys.half) {
    attentionSegments(*r.kernels, *r.pool, shape, query, static_cast<const uint16_t*>(keys.data),
                      static_cast<const uint16_t*>(values.data), segments, numSegments, out);
  } else {
    attentionSegments(*r.kernels, *r.pool, shape, query, static_cast<const float*>(keys.data),
                      static_cast<const float*>(values.data), segments, numSegments, out);
  }
}

/** The caller's output array at `index`, which must hold exactly `length` floats (JS allocates it faster). */
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

Napi::Value wrapWeight(Napi::Env env, NativeWeight* weight) {
  const int64_t owned = static_cast<int64_t>(weight->ownedBytes());
  Napi::MemoryManagement::AdjustExternalMemory(env, owned);
  return Napi::External<NativeWeight>::New(env, weight, [owned](Napi::Env finalizeEnv, NativeWeight* w) {
    Napi::MemoryManagement::AdjustExternalMemory(finalizeEnv, -owned);
    delete w;
  });
}

Context& contextArg(const Napi::CallbackInfo& info) {
  require(info.Length() > 0 && info[0].IsExternal(), info.Env(), "the first argument must be a native context");
  return *info[0].As<Napi::External<Context>>().Data();
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Object out = Napi::Object::New(info.Env());
  out.Set("physicalCores", physicalCoreCount());
  Napi::Array supported = Napi::Array::New(info.Env());
  for (const KernelTable* table : supportedKernelTables()) supported.Set(supported.Length(), table->isa);
  out.Set("supportedIsas", supported);
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

DType dtypeArg(const Napi::CallbackInfo& info, size_t index) {
  const int code = static_cast<int>(number(info, index, "dtype"));
  require(code >= 0 && code <= static_cast<int>(DType::Q6_K), info.Env(), "unknown dtype code");
  return static_cast<DType>(code);
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

/** mapWeight(context, dtype, rows, cols, path, byteOffset, pack) */
Napi::Value MapWeight(const Napi::CallbackInfo& info) {
  const Context& context = contextArg(info);
  const DType dtype = dtypeArg(info, 1);
  const int64_t rows = static_cast<int64_t>(number(info, 2, "rows"));
  const int64_t cols = static_cast<int64_t>(number(info, 3, "cols"));
  require(info.Length() > 4 && info[4].IsString(), info.Env(), "path must be a string");
  const std::string path = info[4].As<Napi::String>().Utf8Value();
  const uint64_t offset = static_cast<uint64_t>(number(info, 5, "byteOffset"));
  const bool pack = info.Length() > 6 && info[6].ToBoolean().Value() && context.kernels->fastTiles;
  try {
    return wrapWeight(info.Env(), NativeWeight::map(dtype, rows, cols, path, offset, pack, *context.pool));
  } catch (const std::runtime_error& error) {
    throw Napi::Error::New(info.Env(), error.what());
  }
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
void requireBlocks(const Napi::Env& env, const int32_t* positions, int count, const int32_t* blockTable, size_t tableLength,
                   int blockSize, size_t blockFloats, size_t poolFloats, bool wholePrefix) {
  int lastPosition = -1;
  for (int t = 0; t < count; t++) {
    require(positions[t] >= 0 && static_cast<size_t>(positions[t] / blockSize) < tableLength, env, "position beyond the block table");
    const int physical = blockTable[positions[t] / blockSize];
    require(physical >= 0 && (physical + 1) * blockFloats <= poolFloats, env, "block table entry outside the pool");
    lastPosition = std::max(lastPosition, static_cast<int>(positions[t]));
  }
  for (int b = 0; wholePrefix && b <= lastPosition / blockSize && lastPosition >= 0; b++) {
    require(blockTable[b] >= 0 && (blockTable[b] + 1) * blockFloats <= poolFloats, env, "block table entry outside the pool");
  }
}

/**
 * The segments of a batched KV op from three arrays at `index`: segments
 * [numSegments, 4] (first row, row count, offset and length of its block
 * table), positions (every segment's, end to end) and block tables (end to
 * end); checked so that no row, position or block lies outside its array.
 */
std::vector<KvSegmentView> segmentsArg(const Napi::CallbackInfo& info, size_t index, size_t numTokens, int blockSize,
                                       size_t blockFloats, size_t poolFloats, bool wholePrefix) {
  const Napi::Env env = info.Env();
  Napi::Int32Array layout = ints(info, index, "segments");
  Napi::Int32Array positions = ints(info, index + 1, "positions");
  Napi::Int32Array tables = ints(info, index + 2, "blockTables");
  require(layout.ElementLength() % 4 == 0, env, "segments must hold 4 numbers per segment");
  std::vector<KvSegmentView> segments;
  size_t used = 0;
  for (size_t i = 0; i < layout.ElementLength(); i += 4) {
    const int start = layout[i], count = layout[i + 1], tableOffset = layout[i + 2], tableLength = layout[i + 3];
    require(start >= 0 && count >= 0 && static_cast<size_t>(start) + count <= numTokens, env, "segment rows outside the batch");
    require(used + count <= positions.ElementLength(), env, "positions are fewer than the segments' rows");
    require(tableOffset >= 0 && tableLength >= 0 && static_cast<size_t>(tableOffset) + tableLength <= tables.ElementLength(), env,
            "a segment's block table lies outside blockTables");
    const KvSegmentView segment{start, count, positions.Data() + used, tables.Data() + tableOffset};
    requireBlocks(env, segment.positions, count, segment.blockTable, tableLength, blockSize, blockFloats, poolFloats, wholePrefix);
    segments.push_back(segment);
    used += count;
  }
  return segments;
}

/** The attention shape from (blockSize, numKvHeads, numHeads, headDim, scale) at these indices. */
AttentionShape attentionShapeArg(const Napi::CallbackInfo& info, size_t blockSize, size_t numKvHeads, size_t numHeads) {
  AttentionShape shape;
  shape.blockSize = static_cast<int>(number(info, blockSize, "blockSize"));
  shape.numKvHeads = static_cast<int>(number(info, numKvHeads, "numKvHeads"));
  shape.numHeads = static_cast<int>(number(info, numHeads, "numHeads"));
  shape.headDim = static_cast<int>(number(info, numHeads + 1, "headDim"));
  shape.scale = static_cast<float>(number(info, numHeads + 2, "scale"));
  require(shape.blockSize > 0 && shape.numKvHeads > 0 && shape.headDim > 0 && shape.numHeads % shape.numKvHeads == 0,
          info.Env(), "attention shape is not valid");
  return shape;
}

/** attention(context, query, keys, values, blockSize, numKvHeads, blockTable, positions, numHeads, headDim, scale, out) → out */
Napi::Value Attention(const Napi::CallbackInfo& info) {
  Napi::Float32Array query = floats(info, 1, "query");
  const KvPoolArg keys = kvPoolArg(info, 2, "keys");
  const KvPoolArg values = kvPoolArg(info, 3, "values");
  Napi::Int32Array blockTable = ints(info, 6, "blockTable");
  Napi::Int32Array positions = ints(info, 7, "positions");
  const AttentionShape shape = attentionShapeArg(info, 4, 5, 8);
  const int numTokens = static_cast<int>(positions.ElementLength());
  require(query.ElementLength() == static_cast<size_t>(numTokens) * shape.numHeads * shape.headDim, info.Env(),
          "query shape does not match");
  requireSamePools(info.Env(), keys, values);
  const size_t blockFloats = static_cast<size_t>(shape.blockSize) * shape.numKvHeads * shape.headDim;
  requireBlocks(info.Env(), positions.Data(), numTokens, blockTable.Data(), blockTable.ElementLength(), shape.blockSize,
                blockFloats, keys.elements, true);
  Napi::Float32Array out = outputArg(info, 11, query.ElementLength());
  const Context& r = contextArg(info);
  const KvSegmentView segment{0, numTokens, positions.Data(), blockTable.Data()};
  if (numTokens > 0) attendPools(r, shape, query.Data(), keys, values, &segment, 1, out.Data());
  return out;
}

/**
 * attentionBatch(context, query, keys, values, blockSize, numKvHeads, numHeads, headDim, scale,
 *                segments, positions, blockTables, out) → out; rows outside every segment are left as they are.
 */
Napi::Value AttentionBatch(const Napi::CallbackInfo& info) {
  Napi::Float32Array query = floats(info, 1, "query");
  const KvPoolArg keys = kvPoolArg(info, 2, "keys");
  const KvPoolArg values = kvPoolArg(info, 3, "values");
  const AttentionShape shape = attentionShapeArg(info, 4, 5, 6);
  const size_t rowSize = static_cast<size_t>(shape.numHeads) * shape.headDim;
  require(query.ElementLength() % rowSize == 0, info.Env(), "query shape does not match");
  requireSamePools(info.Env(), keys, values);
  const size_t blockFloats = static_cast<size_t>(shape.blockSize) * shape.numKvHeads * shape.headDim;
  const std::vector<KvSegmentView> segments =
      segmentsArg(info, 9, query.ElementLength() / rowSize, shape.blockSize, blockFloats, keys.elements, true);
  Napi::Float32Array out = outputArg(info, 12, query.ElementLength());
  const Context& r = contextArg(info);
  attendPools(r, shape, query.Data(), keys, values, segments.data(), static_cast<int>(segments.size()), out.Data());
  return out;
}

/** writeKv(context, pool, blockSize, rowSize, blockTable, positions, values) */
Napi::Value WriteKv(const Napi::CallbackInfo& info) {
  const KvPoolArg pool = kvPoolArg(info, 1, "pool");
  const int blockSize = static_cast<int>(number(info, 2, "blockSize"));
  const int rowSize = static_cast<int>(number(info, 3, "rowSize"));
  Napi::Int32Array blockTable = ints(info, 4, "blockTable");
  Napi::Int32Array positions = ints(info, 5, "positions");
  Napi::Float32Array values = floats(info, 6, "values");
  require(blockSize > 0 && rowSize > 0 && values.ElementLength() == positions.ElementLength() * rowSize, info.Env(),
          "values do not hold one row per position");
  requireBlocks(info.Env(), positions.Data(), static_cast<int>(positions.ElementLength()), blockTable.Data(),
                blockTable.ElementLength(), blockSize, static_cast<size_t>(blockSize) * rowSize, pool.elements, false);
  writeKvPool(*contextArg(info).kernels, pool, blockSize, rowSize, blockTable.Data(), positions.Data(),
              static_cast<int>(positions.ElementLength()), values.Data());
  return info.Env().Undefined();
}

/** writeKvBatch(context, keyPool, valuePool, blockSize, rowSize, segments, positions, blockTables, keys, values) */
Napi::Value WriteKvBatch(const Napi::CallbackInfo& info) {
  const KvPoolArg keyPool = kvPoolArg(info, 1, "keyPool");
  const KvPoolArg valuePool = kvPoolArg(info, 2, "valuePool");
  const int blockSize = static_cast<int>(number(info, 3, "blockSize"));
  const int rowSize = static_cast<int>(number(info, 4, "rowSize"));
  Napi::Float32Array keys = floats(info, 8, "keys");
  Napi::Float32Array values = floats(info, 9, "values");
  require(blockSize > 0 && rowSize > 0 && keys.ElementLength() % rowSize == 0 && keys.ElementLength() == values.ElementLength(),
          info.Env(), "keys and values must hold the same whole rows");
  requireSamePools(info.Env(), keyPool, valuePool);
  const std::vector<KvSegmentView> segments = segmentsArg(info, 5, keys.ElementLength() / rowSize, blockSize,
                                                          static_cast<size_t>(blockSize) * rowSize, keyPool.elements, false);
  const KernelTable& kernels = *contextArg(info).kernels;
  // In segment order, on this thread: a few rows per sequence, and a slot two segments share ends with the last.
  for (const KvSegmentView& s : segments) {
    const size_t first = static_cast<size_t>(s.start) * rowSize;
    writeKvPool(kernels, keyPool, blockSize, rowSize, s.blockTable, s.positions, s.count, keys.Data() + first);
    writeKvPool(kernels, valuePool, blockSize, rowSize, s.blockTable, s.positions, s.count, values.Data() + first);
  }
  return info.Env().Undefined();
}

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
  exports.Set("attention", Napi::Function::New(env, Attention));
  exports.Set("attentionBatch", Napi::Function::New(env, AttentionBatch));
  exports.Set("siluMul", Napi::Function::New(env, SiluMul));
  exports.Set("writeKv", Napi::Function::New(env, WriteKv));
  exports.Set("writeKvBatch", Napi::Function::New(env, WriteKvBatch));
  exports.Set("addInPlace", Napi::Function::New(env, AddInPlace));
  exports.Set("memoryBandwidth", Napi::Function::New(env, MemoryBandwidth));
  return exports;
}

}  // namespace tessera

static Napi::Object InitTessera(Napi::Env env, Napi::Object exports) { return tessera::Init(env, exports); }

NODE_API_MODULE(tessera_native, InitTessera)
