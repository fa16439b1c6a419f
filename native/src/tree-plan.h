// The shape of the canonical halving tree over n leaves, as the kernels'
// reduceLeaves wants it: the leaf count (1 or 2) of each node at depth
// floor(log2 n). Computed once per matmul call.
#pragma once
#include <cstdint>
#include <vector>

namespace tessera {

inline void collectFirstLevel(int count, int depth, std::vector<uint8_t>& out) {
  if (depth == 0) {
    out.push_back(static_cast<uint8_t>(count));
    return;
  }
  collectFirstLevel(count / 2, depth - 1, out);
  collectFirstLevel(count - count / 2, depth - 1, out);
}

inline std::vector<uint8_t> treeFirstLevel(int n) {
  std::vector<uint8_t> out;
  if (n <= 0) return out;
  int depth = 0;
  while ((2 << depth) <= n) depth++;
  collectFirstLevel(n, depth, out);
  return out;
}

}  // namespace tessera
