// Quantizes one token's activations to 8-bit blocks for the quantized-weight
// dot products: per block d = max|x| / 127 and q = round-half-even(x / d) via
// x * (1 / d). Every variant does exactly these float operations, so the
// integer dots downstream see the same q whatever the ISA.
#include "kernel-functions.h"
#include <cmath>

namespace tessera {
namespace TESSERA_ISA_NS {
namespace {

inline float blockAbsMax(const float* x, int n) {
  float amax = 0.0f;
  for (int i = 0; i < n; i++) {
    const float a = std::fabs(x[i]);
    amax = a > amax ? a : amax;
  }
  return amax;
}

[[maybe_unused]] void quantizeBlockPortable(const float* x, int n, int8_t* q, float* d, int32_t* sums16) {
  const float amax = blockAbsMax(x, n);
  const float scale = amax / 127.0f;
  const float inverse = scale != 0.0f ? 1.0f / scale : 0.0f;
  *d = scale;
  for (int i = 0; i < n; i++) q[i] = static_cast<int8_t>(std::nearbyint(x[i] * inverse));
  for (int g = 0; g < n / 16; g++) {
    int32_t sum = 0;
    for (int i = 0; i < 16; i++) sum += q[16 * g + i];
    sums16[g] = sum;
  }
}

#if defined(TESSERA_AVX512)
/** A block of a multiple of 16 elements; same arithmetic as the portable one. */
void quantizeBlockAvx512(const float* x, int n, int8_t* q, float* d, int32_t* sums16) {
  __m512 amaxv = _mm512_setzero_ps();
  for (int i = 0; i < n; i += 16) amaxv = _mm512_max_ps(amaxv, _mm512_abs_ps(_mm512_loadu_ps(x + i)));
  const float amax = _mm512_reduce_max_ps(amaxv);
  const float scale = amax / 127.0f;
  const float inverse = scale != 0.0f ? 1.0f / scale : 0.0f;
  *d = scale;
  const __m512 inv = _mm512_set1_ps(inverse);
  for (int i = 0; i < n; i += 16) {
    // cvtps rounds half to even under the default MXCSR, like nearbyint.
    const __m512i qi = _mm512_cvtps_epi32(_mm512_mul_ps(_mm512_loadu_ps(x + i), inv));
    _mm_storeu_si128(reinterpret_cast<__m128i*>(q + i), _mm512_cvtsepi32_epi8(qi));
    sums16[i / 16] = _mm512_reduce_add_epi32(qi);
  }
}
#endif

}  // namespace

void quantizeRow(const float* x, int K, int blockSize, int8_t* q, float* d, int32_t* sums16) {
  for (int b = 0; b < K / blockSize; b++) {
    const int start = b * blockSize;
#if defined(TESSERA_AVX512)
    quantizeBlockAvx512(x + start, blockSize, q + start, d + b, sums16 + start / 16);
#else
    quantizeBlockPortable(x + start, blockSize, q + start, d + b, sums16 + start / 16);
#endif
  }
}

}  // namespace TESSERA_ISA_NS
}  // namespace tessera
