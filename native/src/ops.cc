#include "ops.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

namespace tessera {
namespace {

// Below this many elements an elementwise op is cheaper on one thread than a pool hand-off.
constexpr size_t kParallelElements = 1 << 16;
constexpr size_t kElementChunk = 1 << 14;

}  // namespace

void rmsNormRows(const KernelTable& kernels, ThreadPool& pool, const float* x, const float* weight, int numRows, int dim,
                 float eps, float* out) {
  auto task = [&](int r) { kernels.rmsNorm(x + static_cast<size_t>(r) * dim, weight, dim, eps, out + static_cast<size_t>(r) * dim); };
  if (numRows >= 4) {
    pool.run(numRows, task);
  } else {
    for (int r = 0; r < numRows; r++) task(r);
  }
}

void ropeInPlace(float* x, const int32_t* positions, int numTokens, int numHeads, int headDim, int ropeDims, bool halves,
                 const float* inverseFrequencies) {
  const int half = ropeDims / 2;
  const int pairStride = halves ? 1 : 2;
  const int partnerOffset = halves ? half : 1;
  std::vector<double> cosines(half), sines(half);
  for (int t = 0; t < numTokens; t++) {
    for (int i = 0; i < half; i++) {
      const double angle = positions[t] * static_cast<double>(inverseFrequencies[i]);
      cosines[i] = std::cos(angle);
      sines[i] = std::sin(angle);
    }
    for (int h = 0; h < numHeads; h++) {
      float* head = x + (static_cast<size_t>(t) * numHeads + h) * headDim;
      for (int i = 0; i < half; i++) {
        float* a = head + i * pairStride;
        float* b = a + partnerOffset;
        const double x0 = *a, x1 = *b;
        *a = static_cast<float>(x0 * cosines[i] - x1 * sines[i]);
        *b = static_cast<float>(x0 * sines[i] + x1 * cosines[i]);
      }
    }
  }
}

void writeKvRows(float* pool, int blockSize, int rowSize, const int32_t* blockTable, const int32_t* positions, int numTokens,
                 const float* values) {
  for (int t = 0; t < numTokens; t++) {
    const int position = positions[t];
    const size_t slot = static_cast<size_t>(blockTable[position / blockSize]) * blockSize + position % blockSize;
    std::memcpy(pool + slot * rowSize, values + static_cast<size_t>(t) * rowSize, sizeof(float) * rowSize);
  }
}

void attentionBatch(const KernelTable& kernels, ThreadPool& pool, const AttentionShape& s, const float* query,
                    const float* keys, const float* values, const int32_t* blockTable, const int32_t* positions, float* out) {
  const int group = s.numHeads / s.numKvHeads;
  const int rowStride = s.numKvHeads * s.headDim;
  int lastPosition = 0;
  for (int t = 0; t < s.numTokens; t++) lastPosition = std::max(lastPosition, positions[t]);
  const int numBlocks = lastPosition / s.blockSize + 1;
  // [numKvHeads, numBlocks] where (block, position 0, kv head) starts.
  std::vector<const float*> keyBlocks(static_cast<size_t>(s.numKvHeads) * numBlocks);
  std::vector<const float*> valueBlocks(keyBlocks.size());
  for (int kv = 0; kv < s.numKvHeads; kv++) {
    for (int b = 0; b < numBlocks; b++) {
      const size_t offset = static_cast<size_t>(blockTable[b]) * s.blockSize * rowStride + static_cast<size_t>(kv) * s.headDim;
      keyBlocks[kv * numBlocks + b] = keys + offset;
      valueBlocks[kv * numBlocks + b] = values + offset;
    }
  }
  // A task is one KV head for a run of tokens: all query heads of its group, so
  // each transposed key block serves group·tokens queries.
  constexpr int kTokensPerTask = 16;
  const int tokenChunks = (s.numTokens + kTokensPerTask - 1) / kTokensPerTask;
  pool.run(tokenChunks * s.numKvHeads, [&](int task) {
    const int kv = task % s.numKvHeads;
    const int firstToken = (task / s.numKvHeads) * kTokensPerTask;
    const int tokens = std::min(kTokensPerTask, s.numTokens - firstToken);
    thread_local std::vector<const float*> queries;
    thread_local std::vector<float*> outs;
    thread_local std::vector<int32_t> lasts;
    thread_local std::vector<float> scratch;
    queries.clear();
    outs.clear();
    lasts.clear();
    for (int t = firstToken; t < firstToken + tokens; t++) {
      for (int h = kv * group; h < (kv + 1) * group; h++) {
        const size_t offset = (static_cast<size_t>(t) * s.numHeads + h) * s.headDim;
        queries.push_back(query + offset);
        outs.push_back(out + offset);
        lasts.push_back(positions[t]);
      }
    }
    const int count = static_cast<int>(queries.size());
    const size_t needed = attentionScratchFloats(count, s.blockSize, s.headDim);
    if (scratch.size() < needed) scratch.resize(needed);
    kernels.attendKvHead(queries.data(), lasts.data(), outs.data(), count, keyBlocks.data() + static_cast<size_t>(kv) * numBlocks,
                         valueBlocks.data() + static_cast<size_t>(kv) * numBlocks, s.blockSize, rowStride, s.headDim, s.scale,
                         scratch.data());
  });
}

void siluMulAll(const KernelTable& kernels, ThreadPool& pool, const float* gate, const float* up, size_t n, float* out) {
  if (n < kParallelElements) return kernels.siluMul(gate, up, n, out);
  const int chunks = static_cast<int>((n + kElementChunk - 1) / kElementChunk);
  pool.run(chunks, [&](int c) {
    const size_t start = static_cast<size_t>(c) * kElementChunk;
    kernels.siluMul(gate + start, up + start, std::min(kElementChunk, n - start), out + start);
  });
}

void addAll(const KernelTable& kernels, ThreadPool& pool, float* a, const float* b, size_t n) {
  if (n < kParallelElements) return kernels.add(a, b, n);
  const int chunks = static_cast<int>((n + kElementChunk - 1) / kElementChunk);
  pool.run(chunks, [&](int c) {
    const size_t start = static_cast<size_t>(c) * kElementChunk;
    kernels.add(a + start, b + start, std::min(kElementChunk, n - start));
  });
}

}  // namespace tessera
