#include "matmul.h"

#include <algorithm>
#include <cstdint>
#include <stdexcept>
#include <vector>

#include "packed-tile.h"
#include "tree-plan.h"

namespace tessera {
namespace {

// Activations of the token tile and the rows of a chunk both stay in L2.
constexpr size_t kTileBytes = 192 * 1024;

bool isQuantized(DType dtype) { return blockElements(dtype) > 1; }

int leafCount(DType dtype, int64_t K) {
  if (isQuantized(dtype)) return static_cast<int>(K / blockElements(dtype));
  return static_cast<int>((K + 31) / 32);
}

/** Every token's activations as 8-bit blocks. */
struct QuantizedActivations {
  std::vector<int8_t> q;       // [numTokens, K]
  std::vector<float> d;        // [numTokens, K / blockSize]
  std::vector<int32_t> sums;   // [numTokens, K / 16]
  std::vector<int32_t> bias;   // [numTokens, K / 32] for the tile kernels, or empty
  int64_t K = 0;
  int blockSize = 0;

  QuantizedRow row(int t) const {
    return {q.data() + t * K, d.data() + t * (K / blockSize), sums.data() + t * (K / 16),
            bias.empty() ? nullptr : bias.data() + t * (K / 32)};
  }

  /**
   * For q8_0/q4_0 tiles: -bias · Σq per block of 32 (128 for q8_0 stored as
   * q + 128, 8 for q4_0 nibbles); k-quant tiles take the sums over 16 as they are.
   */
  void computeTileBias(DType dtype) {
    if (blockElements(dtype) != 32) return;
    const int32_t perUnit = dtype == DType::Q8_0 ? 128 : 8;
    bias.resize(sums.size() / 2);
    for (size_t b = 0; b < bias.size(); b++) bias[b] = -perUnit * (sums[2 * b] + sums[2 * b + 1]);
  }
};

void quantizeActivations(const KernelTable& kernels, ThreadPool& pool, const float* x, int numTokens, int64_t K,
                         int blockSize, QuantizedActivations& out) {
  out.K = K;
  out.blockSize = blockSize;
  out.q.resize(static_cast<size_t>(numTokens * K));
  out.d.resize(static_cast<size_t>(numTokens * (K / blockSize)));
  out.sums.resize(static_cast<size_t>(numTokens * (K / 16)));
  auto task = [&](int t) {
    kernels.quantizeRow(x + t * K, static_cast<int>(K), blockSize, out.q.data() + t * K,
                        out.d.data() + t * (K / blockSize), out.sums.data() + t * (K / 16));
  };
  if (numTokens >= 8) {
    pool.run(numTokens, task);
  } else {
    for (int t = 0; t < numTokens; t++) task(t);
  }
}

/**
 * Leaves of one weight row against each token. With float activations a
 * quantized row is dequantized once (as readRows would) and dotted as f32,
 * each 256-element k-quant leaf being its eight 32-element leaves folded
 * pairwise; otherwise the quantized kernels run on the stored blocks.
 */
class RowLeaves {
 public:
  RowLeaves(const KernelTable& kernels, const NativeWeight& weight, const float* x, const QuantizedActivations& quantized,
            bool floatActivations)
      : kernels_(kernels), weight_(weight), x_(x), quantized_(quantized),
        dequantizes_(floatActivations && isQuantized(weight.dtype())) {}

  void setRow(int64_t r, std::vector<float>& rowValues) {
    row_ = weight_.row(r);
    if (!dequantizes_) return;
    rowValues.resize(static_cast<size_t>(weight_.cols()));
    if (weight_.tiles() != nullptr) {
      weight_.dequantizeRow(r, rowValues.data());
    } else {
      kernels_.dequantize(weight_.dtype(), row_, weight_.cols(), rowValues.data());
    }
    rowValues_ = rowValues.data();
  }

  void leaves(int t, float* out) const {
    const int K = static_cast<int>(weight_.cols());
    const float* x = x_ + static_cast<int64_t>(t) * K;
    if (dequantizes_) return floatLeaves(x, out);
    const int blocks = K / blockElements(weight_.dtype());
    switch (weight_.dtype()) {
      case DType::F32: return kernels_.leavesF32(reinterpret_cast<const float*>(row_), x, K, out);
      case DType::F16: return kernels_.leavesF16(reinterpret_cast<const uint16_t*>(row_), x, K, out);
      case DType::BF16: return kernels_.leavesBF16(reinterpret_cast<const uint16_t*>(row_), x, K, out);
      case DType::Q8_0: return kernels_.leavesQ8_0(row_, quantized_.row(t), blocks, out);
      case DType::Q4_0: return kernels_.leavesQ4_0(row_, quantized_.row(t), blocks, out);
      case DType::Q4_K: return kernels_.leavesQ4_K(row_, quantized_.row(t), blocks, out);
      case DType::Q6_K: return kernels_.leavesQ6_K(row_, quantized_.row(t), blocks, out);
    }
  }

 private:
  void floatLeaves(const float* x, float* out) const {
    const int K = static_cast<int>(weight_.cols());
    kernels_.leavesF32(rowValues_, x, K, out);
    if (blockElements(weight_.dtype()) != 256) return;
    for (int leaf = 0; leaf < K / 256; leaf++) {
      const float* sub = out + 8 * leaf;
      out[leaf] = ((sub[0] + sub[1]) + (sub[2] + sub[3])) + ((sub[4] + sub[5]) + (sub[6] + sub[7]));
    }
  }

  const KernelTable& kernels_;
  const NativeWeight& weight_;
  const float* x_;
  const QuantizedActivations& quantized_;
  const bool dequantizes_;
  const uint8_t* row_ = nullptr;
  const float* rowValues_ = nullptr;
};

/** Activations as the tile kernels read them: 8-bit rows, or float rows padded to whole leaves. */
struct PackedInputs {
  std::vector<QuantizedRow> tokens;
  std::vector<const float*> xs;
  std::vector<float> padded;  // float activations zero-padded to whole leaves, when K is not
  int units = 0;
};

PackedInputs packedInputs(DType dtype, int64_t K, const float* x, const QuantizedActivations& quantized, int numTokens) {
  PackedInputs inputs;
  inputs.units = packedUnits(dtype, K);
  if (isQuantized(dtype)) {
    for (int t = 0; t < numTokens; t++) inputs.tokens.push_back(quantized.row(t));
    return inputs;
  }
  const int64_t width = static_cast<int64_t>(inputs.units) * 32;
  if (width != K) {
    inputs.padded.assign(static_cast<size_t>(numTokens * width), 0.0f);
    for (int t = 0; t < numTokens; t++) std::copy(x + t * K, x + (t + 1) * K, inputs.padded.begin() + t * width);
  }
  for (int t = 0; t < numTokens; t++) inputs.xs.push_back(width != K ? inputs.padded.data() + t * width : x + t * K);
  return inputs;
}

/** One packed weight's part of a call: its tiles cut into chunks that threads take in turn. */
struct PackedTarget {
  const NativeWeight* weight;
  float* out;
  int64_t chunkTiles;
  int chunks;
};

int64_t tilesOf(const MatmulTarget& target) { return (target.weight->rows() + kTileRows - 1) / kTileRows; }

/**
 * jobTiles: the tiles of every target in the job. Chunks are sized from the
 * whole job, so a small projection (k, v beside q) is cut into a few long runs
 * rather than single tiles that each start cold.
 */
PackedTarget planPacked(const MatmulTarget& target, int64_t jobTiles, int numTokens, int threads) {
  const int64_t tiles = tilesOf(target);
  // Decode: long runs of tiles per chunk, about 8 chunks per thread. Batches of up to 64 tokens (one
  // pass of tokens per tile) stream best in runs of up to 16 tiles (the kernel prefetches the next
  // tile: 317 → 338 GOP/s at 16 tokens); longer batches revisit a chunk per 64 tokens, so 4 tiles, in L2.
  const int64_t balanced = std::max<int64_t>(1, (jobTiles + 8 * threads - 1) / (8 * threads));
  const int64_t chunkTiles = numTokens < 4 ? balanced : std::min<int64_t>(numTokens <= 64 ? 16 : 4, balanced);
  return {target.weight, target.out, chunkTiles, static_cast<int>((tiles + chunkTiles - 1) / chunkTiles)};
}

/** This thread's scratch for the tile kernels' leaves, 64-byte aligned, for rows of `units` packed units. */
float* tileLeaves(int units) {
  thread_local std::vector<float> scratch;
  if (scratch.size() < kTileScratchFloats(units) + 16) scratch.resize(kTileScratchFloats(units) + 16);
  return reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) & ~uintptr_t(63));
}

/**
 * Rows [rowBegin, rowEnd) of a packed weight (rowBegin on a tile) for tokens
 * [t0, t1), token tile by token tile, each tile of rows against all of them:
 * row r of token t at out[(t - t0) * stride + (r - rowBegin)].
 */
void packedRows(const KernelTable& kernels, const NativeWeight& weight, const PackedInputs& inputs, const TreePlan& plan,
                int64_t rowBegin, int64_t rowEnd, int t0, int t1, float* out, int64_t stride) {
  const size_t tileBytes = packedTileBytes(weight.dtype(), weight.cols());
  const bool isFloat = !isQuantized(weight.dtype());
  float* leaves = tileLeaves(inputs.units);
  constexpr int kTokenTile = 64;
  for (int t = t0; t < t1; t += kTokenTile) {
    const int count = std::min(kTokenTile, t1 - t);
    for (int64_t first = rowBegin; first < rowEnd; first += kTileRows) {
      const int rows = static_cast<int>(std::min<int64_t>(kTileRows, rowEnd - first));
      const uint8_t* bytes = weight.tiles() + (first / kTileRows) * tileBytes;
      float* at = out + (t - t0) * stride + (first - rowBegin);
      if (isFloat) {
        kernels.tileMatmulFloat(weight.dtype(), bytes, inputs.units, inputs.xs.data() + t, count, plan, leaves, at, stride, rows);
      } else {
        kernels.tileMatmul(weight.dtype(), bytes, inputs.units, inputs.tokens.data() + t, count, plan, leaves, at, stride, rows);
      }
    }
  }
}

/** Every token against the tiles of one chunk, so weights stream once per batch. */
void runPackedChunk(const KernelTable& kernels, const PackedTarget& target, int chunk, const PackedInputs& inputs,
                    int numTokens, const TreePlan& plan) {
  const int64_t M = target.weight->rows();
  const int64_t firstRow = chunk * target.chunkTiles * kTileRows;
  const int64_t endRow = std::min(M, firstRow + target.chunkTiles * kTileRows);
  packedRows(kernels, *target.weight, inputs, plan, firstRow, endRow, 0, numTokens, target.out + firstRow, M);
}

/**
 * Packed weights of one dtype and width against the same activations: the
 * chunks of every weight go to the pool as one job, so small projections
 * (k, v) ride along with a big one instead of each paying a call's ramp-up.
 */
void matmulPacked(const KernelTable& kernels, ThreadPool& pool, const MatmulTarget* targets, int count, const float* x,
                  const QuantizedActivations& quantized, int numTokens, const TreePlan& plan) {
  const NativeWeight& first = *targets[0].weight;
  const PackedInputs inputs = packedInputs(first.dtype(), first.cols(), x, quantized, numTokens);
  std::vector<PackedTarget> planned;
  std::vector<int> firstChunk;  // chunk index where each target starts
  int chunks = 0;
  int64_t jobTiles = 0;
  for (int i = 0; i < count; i++) jobTiles += tilesOf(targets[i]);
  for (int i = 0; i < count; i++) {
    planned.push_back(planPacked(targets[i], jobTiles, numTokens, pool.threads()));
    firstChunk.push_back(chunks);
    chunks += planned.back().chunks;
  }
  pool.run(chunks, [&](int index) {
    const int target = static_cast<int>(std::upper_bound(firstChunk.begin(), firstChunk.end(), index) - firstChunk.begin()) - 1;
    runPackedChunk(kernels, planned[target], index - firstChunk[target], inputs, numTokens, plan);
  });
}

/** Packed targets that share a job (sharesPackedJob): activations quantized once, then one pool job. */
void matmulPackedJob(const KernelTable& kernels, ThreadPool& pool, const MatmulTarget* targets, int count, const float* x,
                     int numTokens) {
  const NativeWeight& first = *targets[0].weight;
  const DType dtype = first.dtype();
  const TreePlanStorage tree(leafCount(dtype, first.cols()));
  QuantizedActivations quantized;
  if (isQuantized(dtype)) {
    quantizeActivations(kernels, pool, x, numTokens, first.cols(), blockElements(dtype), quantized);
    quantized.computeTileBias(dtype);
  }
  matmulPacked(kernels, pool, targets, count, x, quantized, numTokens, tree.plan());
}

/** Whether the targets can share one activation format and one packed job. */
bool sharesPackedJob(const MatmulTarget* targets, int count, bool floatActivations) {
  const NativeWeight& first = *targets[0].weight;
  if (first.tiles() == nullptr || (isQuantized(first.dtype()) && floatActivations)) return false;
  for (int i = 1; i < count; i++) {
    const NativeWeight& w = *targets[i].weight;
    if (w.tiles() == nullptr || w.dtype() != first.dtype() || w.cols() != first.cols()) return false;
  }
  return true;
}

/** Tokens per pass of the row kernels: their activations stay in L2. */
int genericTokenTile(const NativeWeight& weight, bool quantizes) {
  const size_t tokenBytes = quantizes ? static_cast<size_t>(weight.cols()) : static_cast<size_t>(weight.cols()) * 4;
  return static_cast<int>(std::max<size_t>(1, kTileBytes / tokenBytes));
}

/** The row kernels (weights not packed into tiles) over a range of rows and tokens. */
struct GenericRows {
  const KernelTable& kernels;
  const NativeWeight& weight;
  const float* x;
  const QuantizedActivations& quantized;
  bool floatActivations;
  const TreePlan& plan;

  /** Rows [rowStart, rowEnd) for tokens [t0, t1): row r of token t at out[(t - t0) * stride + (r - rowStart)]. */
  void run(int64_t rowStart, int64_t rowEnd, int t0, int t1, int tokenTile, float* out, int64_t stride) const {
    const int64_t K = weight.cols();
    // Leaves of one row, with room for 32-element sub-leaves of k-quant rows on the float path.
    const size_t leafStride = static_cast<size_t>(K / 32 + 48);
    thread_local std::vector<float> leaves, rowValues, scratch;
    if (leaves.size() < 16 * leafStride) leaves.resize(16 * leafStride);
    if (scratch.size() < 16 * leafStride + 16) scratch.resize(16 * leafStride + 16);
    float* aligned = reinterpret_cast<float*>((reinterpret_cast<uintptr_t>(scratch.data()) + 63) & ~uintptr_t(63));
    RowLeaves source(kernels, weight, x, quantized, floatActivations);
    const bool dequantizes = floatActivations && isQuantized(weight.dtype());
    for (int tileStart = t0; tileStart < t1; tileStart += tokenTile) {
      const int tileEnd = std::min(t1, tileStart + tokenTile);
      if (dequantizes) {
        // One dequantized row serves every token of the tile.
        for (int64_t r = rowStart; r < rowEnd; r++) {
          source.setRow(r, rowValues);
          for (int t = tileStart; t < tileEnd; t++) {
            source.leaves(t, leaves.data());
            out[(t - t0) * stride + (r - rowStart)] = kernels.reduceLeaves(leaves.data(), plan);
          }
        }
        continue;
      }
      for (int64_t first = rowStart; first < rowEnd; first += 16) {
        const int rows = static_cast<int>(std::min<int64_t>(16, rowEnd - first));
        for (int t = tileStart; t < tileEnd; t++) {
          for (int i = 0; i < rows; i++) {
            source.setRow(first + i, rowValues);
            source.leaves(t, leaves.data() + i * leafStride);
          }
          kernels.reduceLeavesRows(leaves.data(), leafStride, rows, plan, aligned, out + (t - t0) * stride + (first - rowStart));
        }
      }
    }
  }
};

}  // namespace

void matmul(const KernelTable& kernels, ThreadPool& pool, const NativeWeight& weight, const float* x, int numTokens,
            bool floatActivations, float* out) {
  const MatmulTarget target{&weight, out};
  if (sharesPackedJob(&target, 1, floatActivations)) return matmulPackedJob(kernels, pool, &target, 1, x, numTokens);

  const int64_t M = weight.rows();
  const int64_t K = weight.cols();
  const DType dtype = weight.dtype();
  const TreePlanStorage tree(leafCount(dtype, K));
  const bool quantizes = isQuantized(dtype) && !floatActivations;
  QuantizedActivations quantized;
  if (quantizes) quantizeActivations(kernels, pool, x, numTokens, K, blockElements(dtype), quantized);

  const int tokenTile = genericTokenTile(weight, quantizes);
  // Chunks of whole 16-row groups: about 8 per thread, each small enough to stay in L2.
  const int64_t groups = (M + 15) / 16;
  // A few tokens' activations are tiny: then only balance matters, and longer runs of rows stream better.
  const int64_t balanced = (groups + 8 * pool.threads() - 1) / (8 * pool.threads());
  const int64_t cached = static_cast<int64_t>(kTileBytes / (16 * weight.rowBytes()));
  const int64_t chunkGroups = std::max<int64_t>(1, numTokens < 4 ? balanced : std::min(cached, balanced));
  const int64_t chunkRows = 16 * chunkGroups;
  const int chunks = static_cast<int>((M + chunkRows - 1) / chunkRows);
  const GenericRows rows{kernels, weight, x, quantized, floatActivations, tree.plan()};
  pool.run(chunks, [&](int chunk) {
    const int64_t rowStart = chunk * chunkRows;
    rows.run(rowStart, std::min(M, rowStart + chunkRows), 0, numTokens, tokenTile, out + rowStart, M);
  });
}

void matmulMany(const KernelTable& kernels, ThreadPool& pool, const MatmulTarget* targets, int count, const float* x,
                int numTokens, bool floatActivations) {
  if (count <= 0 || numTokens <= 0) return;
  if (count == 1 || !sharesPackedJob(targets, count, floatActivations)) {
    for (int i = 0; i < count; i++) matmul(kernels, pool, *targets[i].weight, x, numTokens, floatActivations, targets[i].out);
    return;
  }
  matmulPackedJob(kernels, pool, targets, count, x, numTokens);
}

struct RowRangeMatmul::State {
  const KernelTable& kernels;
  DType dtype;
  int64_t K;
  const float* x;
  int numTokens;
  bool floatActivations;
  TreePlanStorage tree;
  QuantizedActivations quantized;
  /** For packed weights: the activations as the tile kernels read them. */
  PackedInputs packed;
};

RowRangeMatmul::RowRangeMatmul(const KernelTable& kernels, ThreadPool& pool, DType dtype, int64_t K, const float* x, int numTokens,
                               bool floatActivations)
    : state_(new State{kernels, dtype, K, x, numTokens, floatActivations, TreePlanStorage(leafCount(dtype, K)), {}, {}}) {
  if (isQuantized(dtype) && !floatActivations) {
    quantizeActivations(kernels, pool, x, numTokens, K, blockElements(dtype), state_->quantized);
    state_->quantized.computeTileBias(dtype);
  }
  state_->packed = packedInputs(dtype, K, x, state_->quantized, numTokens);
}

RowRangeMatmul::~RowRangeMatmul() = default;

void RowRangeMatmul::rows(const NativeWeight& weight, int64_t begin, int64_t end, int t0, int t1, float* out, int64_t stride) const {
  const State& s = *state_;
  if (weight.dtype() != s.dtype || weight.cols() != s.K) throw std::invalid_argument("a row range's weight differs in type or width from the activations prepared for it");
  if (begin < 0 || end > weight.rows() || begin > end || t0 < 0 || t1 > s.numTokens || t0 > t1) throw std::out_of_range("rows or tokens outside the weight or the activations");
  const MatmulTarget target{&weight, nullptr};
  if (!sharesPackedJob(&target, 1, s.floatActivations)) {
    const GenericRows generic{s.kernels, weight, s.x, s.quantized, s.floatActivations, s.tree.plan()};
    generic.run(begin, end, t0, t1, genericTokenTile(weight, isQuantized(s.dtype) && !s.floatActivations), out, stride);
    return;
  }
  if (begin % kTileRows != 0) throw std::invalid_argument("a packed weight's row range must start on a tile");
  packedRows(s.kernels, weight, s.packed, s.tree.plan(), begin, end, t0, t1, out, stride);
}

}  // namespace tessera
