// Declarations shared by the kernel sources of one ISA variant; the table in
// kernel-table.cc collects them. Names live in tessera::<isa>, so the
// variants never collide at link time.
#pragma once
#include "isa.h"

namespace tessera {
namespace TESSERA_ISA_NS {

void quantizeRow(const float* x, int K, int blockSize, int8_t* q, float* d, int32_t* sums16);

void leavesF32(const float* w, const float* x, int K, float* leaves);
void leavesF16(const uint16_t* w, const float* x, int K, float* leaves);
void leavesBF16(const uint16_t* w, const float* x, int K, float* leaves);

void leavesQ8_0(const uint8_t* w, const QuantizedRow& x, int numBlocks, float* leaves);
void leavesQ4_0(const uint8_t* w, const QuantizedRow& x, int numBlocks, float* leaves);
void leavesQ4_K(const uint8_t* w, const QuantizedRow& x, int numBlocks, float* leaves);
void leavesQ6_K(const uint8_t* w, const QuantizedRow& x, int numBlocks, float* leaves);

void dequantize(DType dtype, const uint8_t* bytes, int64_t count, float* out);

float reduceLeaves(float* leaves, const TreePlan& plan);
void reduceLeavesRows(float* leaves, size_t stride, int rows, const TreePlan& plan, float* scratch, float* out);

void tileMatmul(DType dtype, const uint8_t* tile, int numBlocks, const QuantizedRow* tokens, int numTokens,
                const TreePlan& plan, float* scratch, float* out, int64_t outStride, int numRows);

/** tileMatmul for q4_k and q6_k tiles (matmul-tile-kquant.cc). */
void tileMatmulKQuant(DType dtype, const uint8_t* tile, int numBlocks, const QuantizedRow* tokens, int numTokens,
                      const TreePlan& plan, float* scratch, float* out, int64_t outStride, int numRows);

void tileMatmulFloat(DType dtype, const uint8_t* tile, int numLeaves, const float* const* xs, int numTokens,
                     const TreePlan& plan, float* scratch, float* out, int64_t outStride, int numRows);

void rmsNorm(const float* x, const float* weight, int dim, float eps, float* out);
void siluMul(const float* gate, const float* up, size_t n, float* out);
void add(float* a, const float* b, size_t n);

void attendKvHead(const float* const* queries, const int32_t* lastPosition, float* const* out, int count,
                  const float* const* keyBlocks, const float* const* valueBlocks, int blockSize, int rowStride, int headDim,
                  float scale, float* scratch);
void attendKvHeadF16(const float* const* queries, const int32_t* lastPosition, float* const* out, int count,
                     const uint16_t* const* keyBlocks, const uint16_t* const* valueBlocks, int blockSize, int rowStride,
                     int headDim, float scale, float* scratch);
void floatsToHalves(const float* x, size_t n, uint16_t* out);

}  // namespace TESSERA_ISA_NS
}  // namespace tessera
