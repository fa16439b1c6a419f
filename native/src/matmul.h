// x [numTokens, K] · Wᵀ with W [M, K] → out [numTokens, M], in the canonical
// reduction order (backend.ts): per (token, row) the kernels produce leaf sums
// and the halving tree combines them. Threads split rows, never K.
//
// Quantized weights dot against activations quantized to 8-bit blocks (as
// llama.cpp does; integer dot products), unless `floatActivations`: then the
// weight rows are dequantized and the dot is in float32 (slower for prefill,
// within float rounding of the exact product).
#pragma once
#include <memory>

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

/**
 * x against row ranges of weights of one type and width, on the calling
 * thread: the activations are prepared once, then any rows of any such
 * weight come out with exactly the bits a whole matmul gives those rows (a
 * row's sum never depends on the rows or tokens beside it). Ranks that share
 * a projection's rows (comm/row-sharing.cc) compute their claims with it.
 */
class RowRangeMatmul {
 public:
  RowRangeMatmul(const KernelTable& kernels, ThreadPool& pool, DType dtype, int64_t K, const float* x, int numTokens, bool floatActivations);
  ~RowRangeMatmul();
  RowRangeMatmul(const RowRangeMatmul&) = delete;
  RowRangeMatmul& operator=(const RowRangeMatmul&) = delete;
  /** Rows [begin, end) of `weight` for tokens [t0, t1): row r of token t at out[(t - t0) * stride + (r - begin)]. */
  void rows(const NativeWeight& weight, int64_t begin, int64_t end, int t0, int t1, float* out, int64_t stride) const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace tessera
