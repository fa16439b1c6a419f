// The non-matmul ops over whole batches: each splits independent rows, heads
// or tokens over the pool, so no result depends on the thread count.
#pragma once
#include <cstdint>
#include "kernels/kernel-table.h"
#include "thread-pool.h"
#include "weight.h"

namespace tessera {

void rmsNormRows(const KernelTable& kernels, ThreadPool& pool, const float* x, const float* weight, int numRows, int dim,
                 float eps, float* out);

/** Rotates pairs (2i, 2i+1) when `halves` is false, (i, i + ropeDims/2) when true; cos/sin in float64. */
void ropeInPlace(ThreadPool& pool, float* x, const int32_t* positions, int numTokens, int numHeads, int headDim, int ropeDims,
                 bool halves, const float* inverseFrequencies);

/** values [numTokens, rowSize] → pool rows of `positions` through the block table (checked by the caller). */
void writeKvRows(const KernelTable& kernels, float* pool, int blockSize, int rowSize, const int32_t* blockTable,
                 const int32_t* positions, int numTokens, const float* values);
/** The same into a pool of IEEE half bits, each value rounded to nearest even. */
void writeKvRows(const KernelTable& kernels, uint16_t* pool, int blockSize, int rowSize, const int32_t* blockTable,
                 const int32_t* positions, int numTokens, const float* values);

/** One sequence's rows [start, start + count) of a batch, at `positions` through `blockTable` (checked by the caller). */
struct KvSegmentView {
  int start, count;
  const int32_t* positions;   // [count]
  const int32_t* blockTable;  // covers every position
};

struct AttentionShape {
  int numHeads, numKvHeads, headDim, blockSize;
  float scale;
};

/**
 * Each segment's queries (rows of query [numTokens, numHeads, headDim]) over
 * its own blocks of the pools [numBlocks, blockSize, numKvHeads, headDim] →
 * the same rows of out. Rows outside every segment are left alone.
 */
void attentionSegments(const KernelTable& kernels, ThreadPool& pool, const AttentionShape& shape, const float* query,
                       const float* keys, const float* values, const KvSegmentView* segments, int numSegments, float* out);
/** The same over pools of IEEE half bits (bitwise what f32 pools holding the widened values give). */
void attentionSegments(const KernelTable& kernels, ThreadPool& pool, const AttentionShape& shape, const float* query,
                       const uint16_t* keys, const uint16_t* values, const KvSegmentView* segments, int numSegments, float* out);

void siluMulAll(const KernelTable& kernels, ThreadPool& pool, const float* gate, const float* up, size_t n, float* out);
void addAll(const KernelTable& kernels, ThreadPool& pool, float* a, const float* b, size_t n);

}  // namespace tessera
