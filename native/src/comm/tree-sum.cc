#include "tree-sum.h"

#include <algorithm>
#include <cstring>

namespace tessera::comm {
namespace {

constexpr size_t kBlock = 512;

/** dst[0..n) = tree sum of parts [lo, hi) at elements [offset, offset + n); dst is scratch of this level. */
void node(const float* const* parts, int lo, int hi, size_t offset, size_t n, float* dst) {
  if (hi - lo == 1) {
    std::memcpy(dst, parts[lo] + offset, n * sizeof(float));
    return;
  }
  const int mid = lo + (hi - lo) / 2;
  float right[kBlock];
  node(parts, lo, mid, offset, n, dst);
  node(parts, mid, hi, offset, n, right);
  for (size_t i = 0; i < n; i++) dst[i] = dst[i] + right[i];
}

}  // namespace

void treeSum(const float* const* parts, int count, size_t length, float* out) { treeSum(parts, count, length, &out, 1); }

void treeSum(const float* const* parts, int count, size_t length, float* const* outs, int outCount) {
  // A block at a time through a temporary, every part of a block read before any output of it is written: outputs may alias parts.
  float block[kBlock];
  for (size_t offset = 0; offset < length; offset += kBlock) {
    const size_t n = std::min(kBlock, length - offset);
    if (count == 2) {
      const float* a = parts[0] + offset;
      const float* b = parts[1] + offset;
      for (size_t i = 0; i < n; i++) block[i] = a[i] + b[i];
    } else {
      node(parts, 0, count, offset, n, block);
    }
    for (int o = 0; o < outCount; o++) std::memcpy(outs[o] + offset, block, n * sizeof(float));
  }
}

}  // namespace tessera::comm
