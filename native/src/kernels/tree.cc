// The canonical halving tree over leaf sums (backend.ts): [lo, hi) splits at
// lo + floor((hi - lo) / 2). Every node at depth d = floor(log2 n) covers one
// or two leaves, and above that depth the tree is perfect. So the sum is one
// pass that folds the two-leaf nodes (their pattern is `firstLevel`), then
// rounds of adjacent pairs. Each partial is a float32 add, as the contract says.
#include "kernel-functions.h"

namespace tessera {
namespace TESSERA_ISA_NS {

float reduceLeaves(float* leaves, int n, const uint8_t* firstLevel) {
  if (n <= 0) return 0.0f;
  int width = 1;
  while (width * 2 <= n) width *= 2;
  // In place: node i reads leaves at index >= i, so ascending order is safe.
  int source = 0;
  for (int i = 0; i < width; i++) {
    leaves[i] = firstLevel[i] == 2 ? leaves[source] + leaves[source + 1] : leaves[source];
    source += firstLevel[i];
  }
  for (; width > 1; width /= 2) {
    const int half = width / 2;
    for (int i = 0; i < half; i++) leaves[i] = leaves[2 * i] + leaves[2 * i + 1];
  }
  return leaves[0];
}

}  // namespace TESSERA_ISA_NS
}  // namespace tessera
