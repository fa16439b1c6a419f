// The per-ISA kernel table. Each kernel source under kernels/ is compiled
// once per instruction set (see binding.gyp) and fills its part of a table;
// cpu.cc picks the best table the running CPU supports.
//
// Every function here is pure arithmetic on raw pointers: no allocation, no
// threads, no STL (an inline STL template compiled with AVX-512 flags could be
// picked by the linker for a portable caller and fault on an older CPU).
//
// Determinism: a matmul output is the canonical tree (tree.h) over "leaves".
// The kernels below produce those leaves with arithmetic that is fixed per
// leaf and identical in every ISA variant, so results do not depend on the
// batch size, the thread count or which variant ran.
#pragma once
#include <cstddef>
#include <cstdint>

namespace tessera {

enum class DType : int { F32 = 0, F16 = 1, BF16 = 2, Q8_0 = 3, Q4_0 = 4, Q4_K = 5, Q6_K = 6 };

// Byte sizes of ggml's blocks.
constexpr int kQ8_0BlockBytes = 34;  // f16 d, int8 q[32]
constexpr int kQ4_0BlockBytes = 18;  // f16 d, uint8 qs[16] (low nibbles: 0..15, high: 16..31)
constexpr int kQ4_KBlockBytes = 144; // f16 d, f16 dmin, uint8 scales[12], uint8 qs[128]
constexpr int kQ6_KBlockBytes = 210; // uint8 ql[128], uint8 qh[64], int8 scales[16], f16 d
// One q4_k super-block of a 16-row tile (packed-tile.h): quants as 32 groups of 16 lanes × 4 bytes,
// then u8 scales and mins [8 sub-blocks][16 lanes], then f16 d and dmin [16].
constexpr size_t kQ4_KTileScalesAt = 2048;
constexpr size_t kQ4_KTileMinsAt = kQ4_KTileScalesAt + 128;
constexpr size_t kQ4_KTileDAt = kQ4_KTileMinsAt + 128;
constexpr size_t kQ4_KTileDminAt = kQ4_KTileDAt + 32;
constexpr size_t kQ4_KTileBlockBytes = kQ4_KTileDminAt + 32;  // 2368
// One q6_k super-block of a 16-row tile: ql/qh groups (3 × 16 × 64 bytes), then int8 scales
// [16 sub-blocks][16 lanes], then f16 d [16]: 16 stored blocks exactly.
constexpr size_t kQ6_KTileScalesAt = 3072;
constexpr size_t kQ6_KTileDAt = kQ6_KTileScalesAt + 256;
constexpr size_t kQ6_KTileBlockBytes = kQ6_KTileDAt + 32;  // 3360

// One token's activations quantized to 8-bit blocks (what quantized weights
// dot against). Block size 32 for q8_0/q4_0, 256 for q4_k/q6_k.
struct QuantizedRow {
  /** [K] round(x / d) in [-127, 127] */
  const int8_t* q;
  /** [K / blockSize] scale of each block */
  const float* d;
  /** [K / 16] sum of q over each 16 elements (q6_k); sums over 32 are pairs of these. */
  const int32_t* sums16;
  /**
   * [K / 32] for the q8_0/q4_0 tile kernels: -bias · Σq over each block of 32,
   * what their unsigned weights (q + 128, or the q4_0 nibble) over-count; null otherwise.
   */
  const int32_t* tileBias;
};

/**
 * The shape of the canonical halving tree over n leaves (built by
 * tree-plan.h). Every node at depth log2(width) covers one or two leaves
 * (width = 2^floor(log2 n)); above that depth the tree is perfect.
 */
struct TreePlan {
  int n;
  int width;
  /** [width] node i covers leaves [start[i], start[i] + count[i]). */
  const int32_t* start;
  const uint8_t* count;
};

/** Rows per packed tile. */
constexpr int kTileRows = 16;
/** The most tokens a tile pass computes together, and the scratch a tile kernel may need. */
constexpr int kMaxTilePassTokens = 8;
constexpr size_t kTileScratchFloats(int numBlocks) { return static_cast<size_t>(kMaxTilePassTokens) * (numBlocks + 32) * 16; }

constexpr size_t attentionScratchFloats(int count, int blockSize, int headDim) {
  return static_cast<size_t>(headDim) * ((blockSize + 15) / 16 * 16) + static_cast<size_t>(count) * (headDim + 2) +
         4 * static_cast<size_t>((blockSize + 15) / 16 * 16) + 32;
}

struct KernelTable {
  const char* isa;
  /** Whether tileMatmul beats the row kernels (so weights are worth repacking into tiles). */
  bool fastTiles;

  // ---- activation quantization (activation-quant.cc) ----
  /** x [K] → q [K], d [K/blockSize], sums16 [K/16]; blockSize 32 or 256. */
  void (*quantizeRow)(const float* x, int K, int blockSize, int8_t* q, float* d, int32_t* sums16);

  // ---- leaves of one (weight row, token) pair ----
  // Float weights: leaf l covers elements [32l, 32l+32), padded with zeros.
  void (*leavesF32)(const float* w, const float* x, int K, float* leaves);
  void (*leavesF16)(const uint16_t* w, const float* x, int K, float* leaves);
  void (*leavesBF16)(const uint16_t* w, const float* x, int K, float* leaves);
  // Quantized weights: one leaf per weight block (32 or 256 elements).
  void (*leavesQ8_0)(const uint8_t* w, const QuantizedRow& x, int numBlocks, float* leaves);
  void (*leavesQ4_0)(const uint8_t* w, const QuantizedRow& x, int numBlocks, float* leaves);
  void (*leavesQ4_K)(const uint8_t* w, const QuantizedRow& x, int numBlocks, float* leaves);
  void (*leavesQ6_K)(const uint8_t* w, const QuantizedRow& x, int numBlocks, float* leaves);

  // ---- dequantization (dequantize.cc) ----
  /** `count` elements (whole blocks) of `dtype` at `bytes` → out[count], ggml's arithmetic. */
  void (*dequantize)(DType dtype, const uint8_t* bytes, int64_t count, float* out);

  // ---- the canonical tree (tree.cc) ----
  /** Sum of leaves [0, plan.n) by the halving tree; `leaves` (room for n + 32) is clobbered. */
  float (*reduceLeaves)(float* leaves, const TreePlan& plan);
  /**
   * The same for rows ≤ 16 rows of leaves at `leaves + r·stride` (each with
   * room for n + 16) → out[rows]; scratch: 16·(n + 16) floats, 64-byte aligned.
   */
  void (*reduceLeavesRows)(float* leaves, size_t stride, int rows, const TreePlan& plan, float* scratch, float* out);

  // ---- q8_0/q4_0/q4_k weights packed in tiles of 16 rows (packed-tile.h; matmul-tile.cc) ----
  /**
   * out[t·outStride + r] for tokens [0, numTokens) and rows r < numRows of one
   * packed tile: bit-identical to the leaf kernels + reduceLeaves on the
   * stored rows. scratch: kTileScratchFloats(numBlocks) floats, 64-byte aligned.
   */
  void (*tileMatmul)(DType dtype, const uint8_t* tile, int numBlocks, const QuantizedRow* tokens, int numTokens,
                     const TreePlan& plan, float* scratch, float* out, int64_t outStride, int numRows);

  /**
   * The same for an f32/f16/bf16 tile of numLeaves 32-element leaves; xs[t] is
   * token t's activations padded with zeros to numLeaves · 32 (matmul-tile-float.cc).
   */
  void (*tileMatmulFloat)(DType dtype, const uint8_t* tile, int numLeaves, const float* const* xs, int numTokens,
                          const TreePlan& plan, float* scratch, float* out, int64_t outStride, int numRows);

  // ---- row-wise and elementwise ops (pointwise.cc) ----
  void (*rmsNorm)(const float* x, const float* weight, int dim, float eps, float* out);
  void (*siluMul)(const float* gate, const float* up, size_t n, float* out);
  void (*add)(float* a, const float* b, size_t n);

  // ---- attention (attention.cc) ----
  /**
   * Queries that share one KV head, each over its cache positions
   * 0..lastPosition[i], block by block with online softmax → out[i].
   * keyBlocks/valueBlocks[b] point at (block b, position 0, this kv head).
   * scratch: attentionScratchFloats(count, blockSize, headDim).
   */
  void (*attendKvHead)(const float* const* queries, const int32_t* lastPosition, float* const* out, int count,
                       const float* const* keyBlocks, const float* const* valueBlocks, int blockSize, int rowStride,
                       int headDim, float scale, float* scratch);
  /** The same over a cache of IEEE half bits: each element widened exactly, then the f32 arithmetic, bit for bit. */
  void (*attendKvHeadF16)(const float* const* queries, const int32_t* lastPosition, float* const* out, int count,
                          const uint16_t* const* keyBlocks, const uint16_t* const* valueBlocks, int blockSize,
                          int rowStride, int headDim, float scale, float* scratch);
  /** x [n] → IEEE half bits, rounded to nearest even (F16C cvtps_ph's rounding; the same bits in every variant). */
  void (*floatsToHalves)(const float* x, size_t n, uint16_t* out);
};

// One getter per compiled ISA (each defined in kernels/kernel-table.cc built for that ISA).
const KernelTable* kernelTableScalar();
#if defined(__x86_64__) || defined(_M_X64)
const KernelTable* kernelTableAvx2();
const KernelTable* kernelTableAvx512();
#endif
#if defined(__aarch64__)
const KernelTable* kernelTableNeon();
#endif

}  // namespace tessera
