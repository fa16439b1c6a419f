// shareRows: the rows a rank claims go through RowRangeMatmul (the same bits
// as a whole matmul of those rows), optionally as silu(gate) · up, and the
// shared-memory group hands every member all rows.
#include "shared-rows-bindings.h"

#include <algorithm>
#include <vector>

#include "comm/binding-args.h"
#include "matmul.h"
#include "napi-args.h"

namespace tessera {
namespace {

/** Rows per chunk, the unit of a claim: one tile of the kernels (claims take runs of chunks). */
constexpr int64_t kChunkRows = 16;

const NativeWeight* weightAt(const Napi::Array& weights, uint32_t i, const Napi::Env& env) {
  Napi::Value w = weights[i];
  require(w.IsExternal(), env, "weight must be a native weight handle");
  return w.As<Napi::External<NativeWeight>>().Data();
}

/**
 * shareRows(group, context, [weight] or [gate, up], x [numTokens, K], numTokens, heldBegin, fullRows, out [numTokens, fullRows],
 *           floatActivations) → out.
 * Each weight holds rows [heldBegin, heldBegin + rows) of the projection; with two, out = silu(x·gateᵀ) · (x·upᵀ).
 */
Napi::Value ShareRows(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bindings::GroupBox& box = bindings::groupArg(info);
  if (!box.shm) throw Napi::TypeError::New(env, "shared rows need a shared-memory group");
  require(info.Length() > 8 && info[1].IsExternal() && info[2].IsArray(), env, "shareRows(group, context, weights, x, numTokens, heldBegin, fullRows, out, floatActivations)");
  const Context& context = *info[1].As<Napi::External<Context>>().Data();
  Napi::Array weights = info[2].As<Napi::Array>();
  require(weights.Length() == 1 || weights.Length() == 2, env, "shared rows take one weight, or gate and up");
  const NativeWeight* first = weightAt(weights, 0, env);
  const NativeWeight* second = weights.Length() == 2 ? weightAt(weights, 1, env) : nullptr;
  require(!second || (second->rows() == first->rows() && second->cols() == first->cols() && second->dtype() == first->dtype()), env, "gate and up differ in shape or type");
  Napi::Float32Array x = floats(info, 3, "x");
  const int numTokens = static_cast<int>(number(info, 4, "numTokens"));
  const int64_t heldBegin = static_cast<int64_t>(number(info, 5, "heldBegin"));
  const int64_t fullRows = static_cast<int64_t>(number(info, 6, "fullRows"));
  require(numTokens > 0 && x.ElementLength() == static_cast<size_t>(numTokens) * static_cast<size_t>(first->cols()), env, "x does not hold numTokens rows of the weight's columns");
  require(heldBegin >= 0 && heldBegin % 16 == 0 && heldBegin + first->rows() <= fullRows, env, "the held rows lie outside the projection or do not start on 16 rows");
  Napi::Float32Array out = outputArg(info, 7, static_cast<size_t>(numTokens) * static_cast<size_t>(fullRows));
  const bool floatActivations = info[8].ToBoolean().Value();
  // A claim word counts chunks in 16 bits: long projections (a vocabulary) take longer chunks.
  const int64_t chunkRows = std::max<int64_t>(kChunkRows, (fullRows / 60000 + 1) * kChunkRows);
  bindings::guarded(env, [&] {
    const RowRangeMatmul rows(*context.kernels, *context.pool, first->dtype(), first->cols(), x.Data(), numTokens, floatActivations);
    std::vector<float> gate, up;
    box.shm->shareRows(fullRows, chunkRows, heldBegin, heldBegin + first->rows(), numTokens, [&](int t0, int t1, int64_t begin, int64_t end, float* dst, int64_t stride) {
      const int64_t width = end - begin;
      if (!second) return rows.rows(*first, begin - heldBegin, end - heldBegin, t0, t1, dst, stride);
      const size_t count = static_cast<size_t>((t1 - t0) * width);
      gate.resize(count);
      up.resize(count);
      rows.rows(*first, begin - heldBegin, end - heldBegin, t0, t1, gate.data(), width);
      rows.rows(*second, begin - heldBegin, end - heldBegin, t0, t1, up.data(), width);
      for (int t = 0; t < t1 - t0; t++) context.kernels->siluMul(gate.data() + t * width, up.data() + t * width, static_cast<size_t>(width), dst + t * stride);
    }, out.Data());
  });
  return out;
}

}  // namespace

void addSharedRowsBindings(Napi::Env env, Napi::Object exports) { exports.Set("shareRows", Napi::Function::New(env, ShareRows)); }

}  // namespace tessera
