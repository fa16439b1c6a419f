// Row-wise and elementwise ops. rmsNorm rounds like llama.cpp: squares in
// float32 summed in float64, scale = 1 / sqrtf(mean + eps), out = (x · scale)
// · weight; the float64 sum runs in 8 strided lanes (element i in lane i % 8)
// folded pairwise, so it vectorizes.
#include "kernel-functions.h"
#include "exp.h"
#include <cmath>

namespace tessera {
namespace TESSERA_ISA_NS {

void rmsNorm(const float* x, const float* weight, int dim, float eps, float* out) {
  double lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int i = 0;
  for (; i + 8 <= dim; i += 8) {
    for (int j = 0; j < 8; j++) {
      const float square = x[i + j] * x[i + j];
      lanes[j] += square;
    }
  }
  for (; i < dim; i++) {
    const float square = x[i] * x[i];
    lanes[i % 8] += square;
  }
  const double sumSquares = ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
  const float mean = static_cast<float>(sumSquares / dim);
  const float scale = 1.0f / std::sqrt(mean + eps);
  for (int i = 0; i < dim; i++) out[i] = (x[i] * scale) * weight[i];
}

void siluMul(const float* gate, const float* up, size_t n, float* out) {
  size_t i = 0;
#if defined(TESSERA_AVX512)
  // The same operations as the loop below, 16 lanes at a time.
  for (; i + 16 <= n; i += 16) {
    const __m512 g = _mm512_loadu_ps(gate + i);
    const __m512 negated = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(g), _mm512_set1_epi32(INT32_MIN)));
    const __m512 e = expFloat16(negated);
    const __m512 silu = _mm512_div_ps(g, _mm512_add_ps(_mm512_set1_ps(1.0f), e));
    _mm512_storeu_ps(out + i, _mm512_mul_ps(silu, _mm512_loadu_ps(up + i)));
  }
#endif
  for (; i < n; i++) {
    const float g = gate[i];
    out[i] = g / (1.0f + expFloat(-g)) * up[i];
  }
}

void add(float* a, const float* b, size_t n) {
  for (size_t i = 0; i < n; i++) a[i] += b[i];
}

}  // namespace TESSERA_ISA_NS
}  // namespace tessera
