// Builds the TreePlan (kernels/kernel-table.h) of the canonical halving tree
// over n leaves, once per matmul call.
#pragma once
#include <cstdint>
#include <vector>
#include "kernels/kernel-table.h"

namespace tessera {

class TreePlanStorage {
 public:
  explicit TreePlanStorage(int n) {
    if (n > 0) {
      int depth = 0;
      while ((2 << depth) <= n) depth++;
      collect(0, n, depth);
    }
    plan_ = {n, static_cast<int>(count_.size()), start_.data(), count_.data()};
  }
  const TreePlan& plan() const { return plan_; }

 private:
  void collect(int lo, int count, int depth) {
    if (depth == 0) {
      start_.push_back(lo);
      count_.push_back(static_cast<uint8_t>(count));
      return;
    }
    collect(lo, count / 2, depth - 1);
    collect(lo + count / 2, count - count / 2, depth - 1);
  }

  std::vector<int32_t> start_;
  std::vector<uint8_t> count_;
  TreePlan plan_;
};

}  // namespace tessera
