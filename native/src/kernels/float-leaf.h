// The leaf of float-weight rows (matmul-float.cc states the order), written
// once for the portable paths of the row and tile kernels.
#pragma once
#include <cmath>
#include "isa.h"

namespace tessera {
namespace TESSERA_ISA_NS {
namespace {

constexpr int kLeaf = 32;

/** The leaf of 32 zero-padded values, the definition every path matches. */
inline float leafPortable(const float* x, const float* w) {
  float p[16];
  for (int i = 0; i < 16; i++) p[i] = std::fma(x[i + 16], w[i + 16], x[i] * w[i]);
  for (int width = 8; width >= 1; width /= 2) {
    for (int i = 0; i < width; i++) p[i] = p[i] + p[i + width];
  }
  return p[0];
}

}  // namespace
}  // namespace TESSERA_ISA_NS
}  // namespace tessera
