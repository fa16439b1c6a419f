// x [numTokens, K] · Wᵀ with W [M, K] → out [numTokens, M], in the canonical
// reduction order (backend.ts): per (token, row) the kernels produce leaf sums
// and the halving tree combines them. Threads split rows, never K.
//
// Quantized weights dot against activations quantized to 8-bit blocks (as
// llama.cpp does; integer dot products), unless `floatActivations`: then the
// weight rows are dequantized and the dot is in float32 (slower for prefill,
// within float rounding of the exact product).
#pragma once
#include "kernels/kernel-table.h"
#include "thread-pool.h"
#include "weight.h"

namespace tessera {

/** One weight of a matmulMany call and where its [numTokens, rows] result goes. */
struct MatmulTarget {
  const NativeWeight* weight;
  float* out;
};

/**
 * x against several weights of the same width in one job (q, k, v; gate, up):
 * each result has exactly the bits of its own matmul call.
 */
void matmulMany(const KernelTable& kernels, ThreadPool& pool, const MatmulTarget* targets, int count, const float* x,
                int numTokens, bool floatActivations);

void matmul(const KernelTable& kernels, ThreadPool& pool, const NativeWeight& weight, const float* x, int numTokens,
            bool floatActivations, float* out);

}  // namespace tessera
