// Row-wise and elementwise ops. rmsNorm rounds exactly like the reference
// backend (and llama.cpp): squares in float32 summed in float64 left to right,
// scale = 1 / sqrtf(mean + eps), out = (x · scale) · weight.
#include "kernel-functions.h"
#include "exp.h"
#include <cmath>

namespace tessera {
namespace TESSERA_ISA_NS {

void rmsNorm(const float* x, const float* weight, int dim, float eps, float* out) {
  double sumSquares = 0.0;
  for (int i = 0; i < dim; i++) {
    const float square = x[i] * x[i];
    sumSquares += square;
  }
  const float mean = static_cast<float>(sumSquares / dim);
  const float scale = 1.0f / std::sqrt(mean + eps);
  for (int i = 0; i < dim; i++) out[i] = (x[i] * scale) * weight[i];
}

void siluMul(const float* gate, const float* up, size_t n, float* out) {
  for (size_t i = 0; i < n; i++) {
    const float g = gate[i];
    out[i] = g / (1.0f + expFloat(-g)) * up[i];
  }
}

void add(float* a, const float* b, size_t n) {
  for (size_t i = 0; i < n; i++) a[i] += b[i];
}

}  // namespace TESSERA_ISA_NS
}  // namespace tessera
