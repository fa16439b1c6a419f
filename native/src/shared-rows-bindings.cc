// shareRows: the rows a rank claims go through RowRangeMatmul (the same bits
// as a whole matmul of those rows), optionally as silu(gate) · up, and the
// shared-memory group hands every member all rows.
#include "shared-rows-bindings.h"

#include <algorithm>
#include <cstring>
#include <vector>

#include "comm/binding-args.h"
#include "matmul.h"
#include "napi-args.h"

namespace tessera {
namespace {

/** Runs body(from, to) over [begin, end) in runs of whole 16-row tiles, on the rank's pool (inline with one thread). */
template <class Body>
void onPool(ThreadPool& pool, int64_t begin, int64_t end, const Body& body) {
  const int64_t tiles = (end - begin + 15) / 16;
  const int pieces = static_cast<int>(std::min<int64_t>(tiles, 2 * static_cast<int64_t>(pool.threads())));
  if (pieces <= 1) return body(begin, end);
  pool.run(pieces, [&](int i) {
    const int64_t from = begin + tiles * i / pieces * 16;
    const int64_t to = std::min(end, begin + tiles * (i + 1) / pieces * 16);
    if (from < to) body(from, to);
  });
}

/** Adds the activations' preparation (quantizing x: compute, before the shared round) to the group's counters. */
class PrepTimer {
 public:
  explicit PrepTimer(comm::CommStats& stats) : stats_(stats), start_(comm::nowNs()) {}
  void done() const {
    const uint64_t spent = comm::nowNs() - start_;
    stats_.totalNs += spent;
    stats_.computeNs += spent;
  }

 private:
  comm::CommStats& stats_;
  uint64_t start_;
};

/**
 * Rows per chunk, the unit of a claim: one 16-row tile of the kernels (claims take runs of chunks), or
 * several for projections longer than the claim word's 16 bits count (a vocabulary).
 */
int64_t chunkRowsOf(int64_t fullRows) { return (fullRows / 60000 + 1) * 16; }

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
  const int64_t chunkRows = chunkRowsOf(fullRows);
  bindings::guarded(env, [&] {
    const PrepTimer prep(box.shm->stats);
    const RowRangeMatmul rows(*context.kernels, *context.pool, first->dtype(), first->cols(), x.Data(), numTokens, floatActivations);
    prep.done();
    box.shm->shareRows(fullRows, chunkRows, heldBegin, heldBegin + first->rows(), numTokens, [&](int t0, int t1, int64_t begin, int64_t end, float* dst, int64_t stride) {
      onPool(*context.pool, begin, end, [&](int64_t from, int64_t to) {
        float* at = dst + (from - begin);
        if (!second) return rows.rows(*first, from - heldBegin, to - heldBegin, t0, t1, at, stride);
        const int64_t width = to - from;
        thread_local std::vector<float> gate, up;
        const size_t count = static_cast<size_t>((t1 - t0) * width);
        gate.resize(count);
        up.resize(count);
        rows.rows(*first, from - heldBegin, to - heldBegin, t0, t1, gate.data(), width);
        rows.rows(*second, from - heldBegin, to - heldBegin, t0, t1, up.data(), width);
        for (int t = 0; t < t1 - t0; t++) context.kernels->siluMul(gate.data() + t * width, up.data() + t * width, static_cast<size_t>(width), at + t * stride);
      });
    }, out.Data());
  });
  return out;
}

/** One projection of a concatenation: its weight (the rows held here, or none), where they start, and its rows in all. */
struct Part {
  const NativeWeight* weight;
  int64_t heldBegin;
  int64_t fullRows;
  /** First row of this part in the concatenation. */
  int64_t offset;
  int64_t heldRows() const { return weight ? weight->rows() : 0; }
};

/**
 * shareRowsConcatenated(group, context, weights (handle or null: none held), x [numTokens, K], numTokens,
 *                       heldBegins, fullRows, outs [numTokens, fullRows_i], floatActivations) → outs.
 * The projections' rows as one concatenation (q, k, v: one claim round instead of three); the rows held
 * here must be one run of it (a prefix on member 0, a suffix on member 1).
 */
Napi::Value ShareRowsConcatenated(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  bindings::GroupBox& box = bindings::groupArg(info);
  if (!box.shm) throw Napi::TypeError::New(env, "shared rows need a shared-memory group");
  require(info.Length() > 8 && info[1].IsExternal() && info[2].IsArray() && info[5].IsArray() && info[6].IsArray() && info[7].IsArray(), env,
          "shareRowsConcatenated(group, context, weights, x, numTokens, heldBegins, fullRows, outs, floatActivations)");
  const Context& context = *info[1].As<Napi::External<Context>>().Data();
  Napi::Array weights = info[2].As<Napi::Array>();
  Napi::Array heldBegins = info[5].As<Napi::Array>();
  Napi::Array fullRows = info[6].As<Napi::Array>();
  Napi::Array outs = info[7].As<Napi::Array>();
  const uint32_t count = weights.Length();
  require(count > 0 && heldBegins.Length() == count && fullRows.Length() == count && outs.Length() == count, env, "weights, heldBegins, fullRows and outs differ in length");
  Napi::Float32Array x = floats(info, 3, "x");
  const int numTokens = static_cast<int>(number(info, 4, "numTokens"));
  const bool floatActivations = info[8].ToBoolean().Value();
  std::vector<Part> parts;
  std::vector<float*> outputs;
  const NativeWeight* model = nullptr;
  int64_t total = 0, heldFirst = -1, heldEnd = 0, heldSum = 0;
  for (uint32_t i = 0; i < count; i++) {
    Napi::Value w = weights[i];
    const NativeWeight* weight = w.IsNull() ? nullptr : weightAt(weights, i, env);
    Part part{weight, static_cast<int64_t>(heldBegins.Get(i).As<Napi::Number>().Int64Value()), static_cast<int64_t>(fullRows.Get(i).As<Napi::Number>().Int64Value()), total};
    require(part.fullRows > 0 && part.fullRows % 16 == 0 && part.heldBegin >= 0 && part.heldBegin % 16 == 0 && part.heldBegin + part.heldRows() <= part.fullRows, env, "a part's rows are not whole tiles, or its held rows lie outside it");
    if (weight) {
      require(!model || (weight->dtype() == model->dtype() && weight->cols() == model->cols()), env, "the parts differ in type or width");
      model = model ? model : weight;
      if (heldFirst < 0) heldFirst = part.offset + part.heldBegin;
      heldEnd = part.offset + part.heldBegin + part.heldRows();
      heldSum += part.heldRows();
    }
    Napi::Value o = outs[i];
    require(o.IsTypedArray() && o.As<Napi::TypedArray>().TypedArrayType() == napi_float32_array && o.As<Napi::Float32Array>().ElementLength() == static_cast<size_t>(numTokens) * static_cast<size_t>(part.fullRows), env, "an out has the wrong length");
    outputs.push_back(o.As<Napi::Float32Array>().Data());
    parts.push_back(part);
    total += part.fullRows;
  }
  require(model != nullptr && heldSum == heldEnd - heldFirst, env, "the rows held here are not one run of the concatenation");
  require(numTokens > 0 && x.ElementLength() == static_cast<size_t>(numTokens) * static_cast<size_t>(model->cols()), env, "x does not hold numTokens rows of the weights' columns");
  const int64_t chunkRows = chunkRowsOf(total);
  std::vector<float> joined(static_cast<size_t>(numTokens) * static_cast<size_t>(total));
  bindings::guarded(env, [&] {
    const PrepTimer prep(box.shm->stats);
    const RowRangeMatmul rows(*context.kernels, *context.pool, model->dtype(), model->cols(), x.Data(), numTokens, floatActivations);
    prep.done();
    box.shm->shareRows(total, chunkRows, heldFirst, heldEnd, numTokens, [&](int t0, int t1, int64_t begin, int64_t end, float* dst, int64_t stride) {
      onPool(*context.pool, begin, end, [&](int64_t claimFrom, int64_t claimTo) {
        for (const Part& part : parts) {
          const int64_t from = std::max(claimFrom, part.offset), to = std::min(claimTo, part.offset + part.fullRows);
          if (from >= to) continue;
          rows.rows(*part.weight, from - part.offset - part.heldBegin, to - part.offset - part.heldBegin, t0, t1, dst + (from - begin), stride);
        }
      });
    }, joined.data());
  });
  for (size_t i = 0; i < parts.size(); i++) {
    for (int t = 0; t < numTokens; t++) std::memcpy(outputs[i] + t * parts[i].fullRows, joined.data() + t * total + parts[i].offset, static_cast<size_t>(parts[i].fullRows) * sizeof(float));
  }
  return outs;
}

}  // namespace

void addSharedRowsBindings(Napi::Env env, Napi::Object exports) {
  exports.Set("shareRows", Napi::Function::New(env, ShareRows));
  exports.Set("shareRowsConcatenated", Napi::Function::New(env, ShareRowsConcatenated));
}

}  // namespace tessera
