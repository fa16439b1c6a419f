// One query head attending over its sequence's paged cache: positions in
// order, one KV block at a time, online softmax. The arithmetic of a head
// never looks at other tokens or heads, so prefill, chunked prefill and decode
// give the same bits, and so does any split of heads over threads.
#include "kernel-functions.h"
#include "exp.h"

namespace tessera {
namespace TESSERA_ISA_NS {
namespace {

/** q·k in a fixed order: 16 strided partial sums, then folded 8, 4, 2, 1. */
inline float dotFixed(const float* q, const float* k, int n) {
  float part[16] = {0};
  int d = 0;
  for (; d + 16 <= n; d += 16) {
    for (int i = 0; i < 16; i++) part[i] += q[d + i] * k[d + i];
  }
  for (; d < n; d++) part[d % 16] += q[d] * k[d];
  for (int width = 8; width >= 1; width /= 2) {
    for (int i = 0; i < width; i++) part[i] += part[i + width];
  }
  return part[0];
}

}  // namespace

void attendHead(const float* query, const float* const* keyBlocks, const float* const* valueBlocks, int lastPosition,
                int blockSize, int rowStride, int headDim, float scale, float* scratch, float* out) {
  float* scores = scratch;              // [blockSize]
  float* acc = scratch + blockSize;     // [headDim]
  for (int d = 0; d < headDim; d++) acc[d] = 0.0f;
  float max = -__builtin_inff();
  float sum = 0.0f;
  for (int block = 0; block * blockSize <= lastPosition; block++) {
    const int remaining = lastPosition + 1 - block * blockSize;
    const int count = remaining < blockSize ? remaining : blockSize;
    const float* keys = keyBlocks[block];
    const float* values = valueBlocks[block];
    float blockMax = -__builtin_inff();
    for (int j = 0; j < count; j++) {
      const float s = dotFixed(query, keys + static_cast<size_t>(j) * rowStride, headDim) * scale;
      scores[j] = s;
      blockMax = s > blockMax ? s : blockMax;
    }
    const float newMax = blockMax > max ? blockMax : max;
    const float rescale = max == -__builtin_inff() ? 0.0f : expFloat(max - newMax);
    sum *= rescale;
    for (int d = 0; d < headDim; d++) acc[d] *= rescale;
    for (int j = 0; j < count; j++) {
      const float p = expFloat(scores[j] - newMax);
      sum += p;
      const float* v = values + static_cast<size_t>(j) * rowStride;
      for (int d = 0; d < headDim; d++) acc[d] += p * v[d];
    }
    max = newMax;
  }
  for (int d = 0; d < headDim; d++) out[d] = acc[d] / sum;
}

}  // namespace TESSERA_ISA_NS
}  // namespace tessera
