// Leaves of float-weight rows (f32, f16, bf16). Leaf l covers elements
// [32l, 32l + 32) (the last one zero-padded) and is, in this fixed order:
//   p[i] = fma(x[i+16], w[i+16], x[i] * w[i])   for i in 0..15
//   then p[i] += p[i+8], p[i] += p[i+4], p[i] += p[i+2], leaf = p[0] + p[1].
// The vector paths compute 16 (AVX-512) or 8 (AVX2) leaves at once and fold
// them with a transpose; the pairing of every add is the one above.
#include "kernel-functions.h"
#include "fold.h"
#include "float-leaf.h"
#include <cmath>

namespace tessera {
namespace TESSERA_ISA_NS {
namespace {


template <typename Decode>
void leavesPortable(const float* x, int K, int firstLeaf, float* leaves, Decode decode) {
  const int numLeaves = (K + kLeaf - 1) / kLeaf;
  for (int l = firstLeaf; l < numLeaves; l++) {
    float xs[kLeaf];
    float ws[kLeaf];
    for (int i = 0; i < kLeaf; i++) {
      const int k = l * kLeaf + i;
      xs[i] = k < K ? x[k] : 0.0f;
      ws[i] = k < K ? decode(k) : 0.0f;
    }
    leaves[l] = leafPortable(xs, ws);
  }
}

#if defined(TESSERA_AVX512)
/** p[16] of 16 leaves → their 16 leaf values in order. */
inline __m512 foldSixteen(const __m512* p) {
  __m512 c[8], e[4], g[2];
  for (int k = 0; k < 8; k++) c[k] = fold8(p[2 * k], p[2 * k + 1]);
  for (int m = 0; m < 4; m++) e[m] = fold4(c[2 * m], c[2 * m + 1]);
  for (int m = 0; m < 2; m++) g[m] = fold2(e[2 * m], e[2 * m + 1]);
  return _mm512_permutexvar_ps(foldOrder16(), fold1(g[0], g[1]));
}

inline __m512 loadF16(const uint16_t* p) {
  return _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}
inline __m512 loadBF16(const uint16_t* p) {
  const __m512i wide = _mm512_cvtepu16_epi32(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  return _mm512_castsi512_ps(_mm512_slli_epi32(wide, 16));
}

/** Full groups of 16 leaves; returns the number of leaves done. */
template <typename Load>
int leavesAvx512(const float* x, int K, float* leaves, Load load) {
  const int groups = K / (16 * kLeaf);
  for (int group = 0; group < groups; group++) {
    __m512 p[16];
    for (int j = 0; j < 16; j++) {
      const int k = (group * 16 + j) * kLeaf;
      const __m512 product = _mm512_mul_ps(_mm512_loadu_ps(x + k), load(k));
      p[j] = _mm512_fmadd_ps(_mm512_loadu_ps(x + k + 16), load(k + 16), product);
    }
    _mm512_storeu_ps(leaves + group * 16, foldSixteen(p));
  }
  return groups * 16;
}
#elif defined(TESSERA_AVX2)
/** f8[8] (p[i] + p[i+8] of 8 leaves) → the 8 leaf values in order. */
inline __m256 foldEight(const __m256* f8) {
  __m256 c[4], g[2];
  for (int m = 0; m < 4; m++) c[m] = fold4(f8[2 * m], f8[2 * m + 1]);
  for (int m = 0; m < 2; m++) g[m] = fold2(c[2 * m], c[2 * m + 1]);
  const __m256 h = fold1(g[0], g[1]);  // half 0: leaves 0,2,4,6; half 1: 1,3,5,7
  return _mm256_permutevar8x32_ps(h, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

inline __m256 loadF16(const uint16_t* p) {
  return _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
}
inline __m256 loadBF16(const uint16_t* p) {
  const __m256i wide = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  return _mm256_castsi256_ps(_mm256_slli_epi32(wide, 16));
}

template <typename Load>
int leavesAvx2(const float* x, int K, float* leaves, Load load) {
  const int groups = K / (8 * kLeaf);
  for (int group = 0; group < groups; group++) {
    __m256 f8[8];
    for (int j = 0; j < 8; j++) {
      const int k = (group * 8 + j) * kLeaf;
      const __m256 low = _mm256_fmadd_ps(_mm256_loadu_ps(x + k + 16), load(k + 16), _mm256_mul_ps(_mm256_loadu_ps(x + k), load(k)));
      const __m256 high =
          _mm256_fmadd_ps(_mm256_loadu_ps(x + k + 24), load(k + 24), _mm256_mul_ps(_mm256_loadu_ps(x + k + 8), load(k + 8)));
      f8[j] = _mm256_add_ps(low, high);
    }
    _mm256_storeu_ps(leaves + group * 8, foldEight(f8));
  }
  return groups * 8;
}
#endif

}  // namespace

void leavesF32(const float* w, const float* x, int K, float* leaves) {
  int done = 0;
#if defined(TESSERA_AVX512)
  done = leavesAvx512(x, K, leaves, [w](int k) { return _mm512_loadu_ps(w + k); });
#elif defined(TESSERA_AVX2)
  done = leavesAvx2(x, K, leaves, [w](int k) { return _mm256_loadu_ps(w + k); });
#endif
  leavesPortable(x, K, done, leaves, [w](int k) { return w[k]; });
}

void leavesF16(const uint16_t* w, const float* x, int K, float* leaves) {
  int done = 0;
#if defined(TESSERA_AVX512) || defined(TESSERA_AVX2)
#if defined(TESSERA_AVX512)
  done = leavesAvx512(x, K, leaves, [w](int k) { return loadF16(w + k); });
#else
  done = leavesAvx2(x, K, leaves, [w](int k) { return loadF16(w + k); });
#endif
#endif
  leavesPortable(x, K, done, leaves, [w](int k) { return halfToFloat(w[k]); });
}

void leavesBF16(const uint16_t* w, const float* x, int K, float* leaves) {
  int done = 0;
#if defined(TESSERA_AVX512)
  done = leavesAvx512(x, K, leaves, [w](int k) { return loadBF16(w + k); });
#elif defined(TESSERA_AVX2)
  done = leavesAvx2(x, K, leaves, [w](int k) { return loadBF16(w + k); });
#endif
  leavesPortable(x, K, done, leaves, [w](int k) { return bf16ToFloat(w[k]); });
}

}  // namespace TESSERA_ISA_NS
}  // namespace tessera
