#include "kv-bindings.h"

#include <string>
#include <vector>

#include "napi-args.h"
#include "ops.h"

namespace tessera {
namespace {

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

}  // namespace

void addKvBindings(Napi::Env env, Napi::Object exports) {
  exports.Set("attention", Napi::Function::New(env, Attention));
  exports.Set("attentionBatch", Napi::Function::New(env, AttentionBatch));
  exports.Set("writeKv", Napi::Function::New(env, WriteKv));
  exports.Set("writeKvBatch", Napi::Function::New(env, WriteKvBatch));
}

}  // namespace tessera
