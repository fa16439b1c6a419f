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

void treeSum(const float* const* parts, int count, size_t length, float* out) {
  if (count == 1) {
    if (parts[0] != out) std::memmove(out, parts[0], length * sizeof(float));
    return;
  }
  if (count == 2) {
    // Elementwise, each element read before it is written: safe when out is either part.
    const float* a = parts[0];
    const float* b = parts[1];
    for (size_t i = 0; i < length; i++) out[i] = a[i] + b[i];
    return;
  }
  // A block at a time through a temporary, so out may alias a part the tree still reads.
  float block[kBlock];
  for (size_t offset = 0; offset < length; offset += kBlock) {
    const size_t n = std::min(kBlock, length - offset);
    node(parts, 0, count, offset, n, block);
    std::memcpy(out + offset, block, n * sizeof(float));
  }
}

}  // namespace tessera::comm
