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

namespace {

/** Rotates tokens [first, first + count) of x; cos/sin of each token's angles in float64. */
void ropeTokens(float* x, const int32_t* positions, int first, int count, int numHeads, int headDim, int ropeDims, bool halves,
                const float* inverseFrequencies) {
  const int half = ropeDims / 2;
  const int pairStride = halves ? 1 : 2;
  const int partnerOffset = halves ? half : 1;
  thread_local std::vector<double> cosines, sines;
  cosines.resize(half);
  sines.resize(half);
  for (int t = first; t < first + count; t++) {
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

// Pairs a rope task rotates at least: fewer cost less on one thread than a pool hand-off.
constexpr int64_t kRopeTaskPairs = 8192;

}  // namespace

void ropeInPlace(ThreadPool& pool, float* x, const int32_t* positions, int numTokens, int numHeads, int headDim, int ropeDims,
                 bool halves, const float* inverseFrequencies) {
  // Tokens rotate independently: any split over threads gives the same bits.
  const int64_t pairsPerToken = static_cast<int64_t>(numHeads) * (ropeDims / 2);
  const int tokensPerTask = static_cast<int>(std::max<int64_t>(1, kRopeTaskPairs / std::max<int64_t>(1, pairsPerToken)));
  const int tasks = (numTokens + tokensPerTask - 1) / tokensPerTask;
  pool.run(tasks, [&](int task) {
    const int first = task * tokensPerTask;
    ropeTokens(x, positions, first, std::min(tokensPerTask, numTokens - first), numHeads, headDim, ropeDims, halves,
               inverseFrequencies);
  });
}

namespace {

/** The slot of `position` through the block table. */
size_t kvSlot(int blockSize, const int32_t* blockTable, int position) {
  return static_cast<size_t>(blockTable[position / blockSize]) * blockSize + position % blockSize;
}

}  // namespace

void writeKvRows(const KernelTable&, float* pool, int blockSize, int rowSize, const int32_t* blockTable,
                 const int32_t* positions, int numTokens, const float* values) {
  for (int t = 0; t < numTokens; t++) {
    const size_t slot = kvSlot(blockSize, blockTable, positions[t]);
    std::memcpy(pool + slot * rowSize, values + static_cast<size_t>(t) * rowSize, sizeof(float) * rowSize);
  }
}

void writeKvRows(const KernelTable& kernels, uint16_t* pool, int blockSize, int rowSize, const int32_t* blockTable,
                 const int32_t* positions, int numTokens, const float* values) {
  for (int t = 0; t < numTokens; t++) {
    const size_t slot = kvSlot(blockSize, blockTable, positions[t]);
    kernels.floatsToHalves(values + static_cast<size_t>(t) * rowSize, rowSize, pool + slot * rowSize);
  }
}

namespace {

/** KV heads [kvHead, kvHead + kvHeads) for a run of a segment's tokens: all query heads of their groups. */
struct AttentionTask {
  int segment, firstToken, tokens, kvHead, kvHeads;
  int64_t cost;  // query-key pairs per query head
};

// Up to this many tokens per task, so each transposed key block serves
// group·tokens queries, while a long prefill still splits over threads.
constexpr int kTokensPerTask = 16;
// Tasks per thread wanted before a task takes a sequence's KV heads together.
constexpr int kTasksPerThread = 4;

std::vector<AttentionTask> attentionTasks(const KvSegmentView* segments, int numSegments, int numKvHeads, int threads) {
  int64_t runs = 0;
  for (int s = 0; s < numSegments; s++) runs += (segments[s].count + kTokensPerTask - 1) / kTokensPerTask;
  // With token runs enough for every thread, a task takes all KV heads of its
  // run: whole cache rows of one sequence, read in order, instead of every
  // thread reading a slice of the same rows. Otherwise heads split too.
  int kvHeads = numKvHeads;
  while (kvHeads > 1 && runs * ((numKvHeads + kvHeads - 1) / kvHeads) < static_cast<int64_t>(kTasksPerThread) * threads) {
    kvHeads = (kvHeads + 1) / 2;
  }
  std::vector<AttentionTask> tasks;
  for (int s = 0; s < numSegments; s++) {
    for (int first = 0; first < segments[s].count; first += kTokensPerTask) {
      const int tokens = std::min(kTokensPerTask, segments[s].count - first);
      int64_t cost = 0;
      for (int t = first; t < first + tokens; t++) cost += segments[s].positions[t] + 1;
      for (int kv = 0; kv < numKvHeads; kv += kvHeads) {
        const int heads = std::min(kvHeads, numKvHeads - kv);
        tasks.push_back({s, first, tokens, kv, heads, cost * heads});
      }
    }
  }
  // Threads take tasks in order from one counter: costliest first, so a long
  // one never starts last while the other threads sit idle. Results do not
  // depend on which thread runs a task.
  std::stable_sort(tasks.begin(), tasks.end(), [](const AttentionTask& a, const AttentionTask& b) { return a.cost > b.cost; });
  return tasks;
}

/** The kernel for the cache's element type. */
void attendKvHead(const KernelTable& kernels, const float* const* queries, const int32_t* lasts, float* const* outs, int count,
                  const float* const* keyBlocks, const float* const* valueBlocks, const AttentionShape& s, int rowStride,
                  float* scratch) {
  kernels.attendKvHead(queries, lasts, outs, count, keyBlocks, valueBlocks, s.blockSize, rowStride, s.headDim, s.scale, scratch);
}

void attendKvHead(const KernelTable& kernels, const float* const* queries, const int32_t* lasts, float* const* outs, int count,
                  const uint16_t* const* keyBlocks, const uint16_t* const* valueBlocks, const AttentionShape& s, int rowStride,
                  float* scratch) {
  kernels.attendKvHeadF16(queries, lasts, outs, count, keyBlocks, valueBlocks, s.blockSize, rowStride, s.headDim, s.scale,
                          scratch);
}

/** One KV head of a task: its group's queries over the segment's blocks (T: float or half bits). */
template <typename T>
void attendTaskHead(const KernelTable& kernels, const AttentionShape& s, const float* query, const T* keys, const T* values,
                    const KvSegmentView& segment, const AttentionTask& task, int kvHead, float* out) {
  const int group = s.numHeads / s.numKvHeads;
  const int rowStride = s.numKvHeads * s.headDim;
  thread_local std::vector<const float*> queries;
  thread_local std::vector<const T*> keyBlocks, valueBlocks;
  thread_local std::vector<float*> outs;
  thread_local std::vector<int32_t> lasts;
  thread_local std::vector<float> scratch;
  queries.clear();
  outs.clear();
  lasts.clear();
  int lastPosition = 0;
  for (int t = task.firstToken; t < task.firstToken + task.tokens; t++) {
    lastPosition = std::max(lastPosition, static_cast<int>(segment.positions[t]));
    for (int h = kvHead * group; h < (kvHead + 1) * group; h++) {
      const size_t offset = (static_cast<size_t>(segment.start + t) * s.numHeads + h) * s.headDim;
      queries.push_back(query + offset);
      outs.push_back(out + offset);
      lasts.push_back(segment.positions[t]);
    }
  }
  // Where (block, position 0, this KV head) starts, for the blocks the task reads.
  const int numBlocks = lastPosition / s.blockSize + 1;
  keyBlocks.resize(numBlocks);
  valueBlocks.resize(numBlocks);
  for (int b = 0; b < numBlocks; b++) {
    const size_t offset = static_cast<size_t>(segment.blockTable[b]) * s.blockSize * rowStride + static_cast<size_t>(kvHead) * s.headDim;
    keyBlocks[b] = keys + offset;
    valueBlocks[b] = values + offset;
  }
  const int count = static_cast<int>(queries.size());
  const size_t needed = attentionScratchFloats(count, s.blockSize, s.headDim);
  if (scratch.size() < needed) scratch.resize(needed);
  attendKvHead(kernels, queries.data(), lasts.data(), outs.data(), count, keyBlocks.data(), valueBlocks.data(), s, rowStride,
               scratch.data());
}

template <typename T>
void attentionSegmentsOf(const KernelTable& kernels, ThreadPool& pool, const AttentionShape& shape, const float* query,
                         const T* keys, const T* values, const KvSegmentView* segments, int numSegments, float* out) {
  const std::vector<AttentionTask> tasks = attentionTasks(segments, numSegments, shape.numKvHeads, pool.threads());
  pool.run(static_cast<int>(tasks.size()), [&](int i) {
    const AttentionTask& task = tasks[i];
    for (int kv = task.kvHead; kv < task.kvHead + task.kvHeads; kv++) {
      attendTaskHead(kernels, shape, query, keys, values, segments[task.segment], task, kv, out);
    }
  });
}

}  // namespace

void attentionSegments(const KernelTable& kernels, ThreadPool& pool, const AttentionShape& shape, const float* query,
                       const float* keys, const float* values, const KvSegmentView* segments, int numSegments, float* out) {
  attentionSegmentsOf(kernels, pool, shape, query, keys, values, segments, numSegments, out);
}

void attentionSegments(const KernelTable& kernels, ThreadPool& pool, const AttentionShape& shape, const float* query,
                       const uint16_t* keys, const uint16_t* values, const KvSegmentView* segments, int numSegments, float* out) {
  attentionSegmentsOf(kernels, pool, shape, query, keys, values, segments, numSegments, out);
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
