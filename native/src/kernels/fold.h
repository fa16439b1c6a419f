// Transpose-folds that turn several vectors of per-lane partial sums into one
// vector of per-leaf sums, with a fixed pairing of adds (matmul-float.cc
// states it). Integer versions reuse the same shuffles: integer adds are
// exact, so only the float versions' pairing matters for the contract.
#pragma once
#include "isa.h"

namespace tessera {
namespace TESSERA_ISA_NS {
namespace {

#if defined(TESSERA_AVX512)
inline __m512 fold8(__m512 a, __m512 b) {
  return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(1, 0, 1, 0)),
                       _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
}
inline __m512 fold4(__m512 a, __m512 b) {
  return _mm512_add_ps(_mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(2, 0, 2, 0)),
                       _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
}
inline __m512 fold2(__m512 a, __m512 b) {
  return _mm512_add_ps(_mm512_shuffle_ps(a, b, _MM_SHUFFLE(1, 0, 1, 0)), _mm512_shuffle_ps(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
}
inline __m512 fold1(__m512 a, __m512 b) {
  return _mm512_add_ps(_mm512_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
}
/** Lane 4k + j of the last fold holds item 4j + k; this puts item i in lane i. */
inline __m512i foldOrder16() { return _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15); }

inline __m512i fold4i(__m512i a, __m512i b) {
  return _mm512_add_epi32(_mm512_shuffle_i32x4(a, b, _MM_SHUFFLE(2, 0, 2, 0)),
                          _mm512_shuffle_i32x4(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
}
inline __m512i fold2i(__m512i a, __m512i b) {
  const __m512 fa = _mm512_castsi512_ps(a), fb = _mm512_castsi512_ps(b);
  return _mm512_add_epi32(_mm512_castps_si512(_mm512_shuffle_ps(fa, fb, _MM_SHUFFLE(1, 0, 1, 0))),
                          _mm512_castps_si512(_mm512_shuffle_ps(fa, fb, _MM_SHUFFLE(3, 2, 3, 2))));
}
inline __m512i fold1i(__m512i a, __m512i b) {
  const __m512 fa = _mm512_castsi512_ps(a), fb = _mm512_castsi512_ps(b);
  return _mm512_add_epi32(_mm512_castps_si512(_mm512_shuffle_ps(fa, fb, _MM_SHUFFLE(2, 0, 2, 0))),
                          _mm512_castps_si512(_mm512_shuffle_ps(fa, fb, _MM_SHUFFLE(3, 1, 3, 1))));
}
/** v[8], each two items of 8 lanes (items 2p, 2p+1) → the 16 item sums in order. */
inline __m512i sumSixteenOfEight(const __m512i* v) {
  __m512i e[4], g[2];
  for (int m = 0; m < 4; m++) e[m] = fold4i(v[2 * m], v[2 * m + 1]);
  for (int m = 0; m < 2; m++) g[m] = fold2i(e[2 * m], e[2 * m + 1]);
  return _mm512_permutexvar_epi32(foldOrder16(), fold1i(g[0], g[1]));
}
/** u[4], each four items of 4 lanes (items 4j..4j+3 by quarter) → the 16 item sums in order. */
inline __m512i sumSixteenOfFour(const __m512i* u) {
  const __m512i g0 = fold2i(u[0], u[1]);
  const __m512i g1 = fold2i(u[2], u[3]);
  return _mm512_permutexvar_epi32(foldOrder16(), fold1i(g0, g1));
}
#endif

#if defined(TESSERA_AVX2)
inline __m256 fold4(__m256 a, __m256 b) {
  return _mm256_add_ps(_mm256_permute2f128_ps(a, b, 0x20), _mm256_permute2f128_ps(a, b, 0x31));
}
inline __m256 fold2(__m256 a, __m256 b) {
  return _mm256_add_ps(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(1, 0, 1, 0)), _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 2, 3, 2)));
}
inline __m256 fold1(__m256 a, __m256 b) {
  return _mm256_add_ps(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)), _mm256_shuffle_ps(a, b, _MM_SHUFFLE(3, 1, 3, 1)));
}

inline __m256i fold4i(__m256i a, __m256i b) {
  return _mm256_add_epi32(_mm256_permute2x128_si256(a, b, 0x20), _mm256_permute2x128_si256(a, b, 0x31));
}
inline __m256i fold2i(__m256i a, __m256i b) {
  const __m256 fa = _mm256_castsi256_ps(a), fb = _mm256_castsi256_ps(b);
  return _mm256_add_epi32(_mm256_castps_si256(_mm256_shuffle_ps(fa, fb, _MM_SHUFFLE(1, 0, 1, 0))),
                          _mm256_castps_si256(_mm256_shuffle_ps(fa, fb, _MM_SHUFFLE(3, 2, 3, 2))));
}
inline __m256i fold1i(__m256i a, __m256i b) {
  const __m256 fa = _mm256_castsi256_ps(a), fb = _mm256_castsi256_ps(b);
  return _mm256_add_epi32(_mm256_castps_si256(_mm256_shuffle_ps(fa, fb, _MM_SHUFFLE(2, 0, 2, 0))),
                          _mm256_castps_si256(_mm256_shuffle_ps(fa, fb, _MM_SHUFFLE(3, 1, 3, 1))));
}
/** v[8], one item of 8 lanes each → the 8 item sums in order. */
inline __m256i sumEightOfEight(const __m256i* v) {
  __m256i c[4], g[2];
  for (int m = 0; m < 4; m++) c[m] = fold4i(v[2 * m], v[2 * m + 1]);
  for (int m = 0; m < 2; m++) g[m] = fold2i(c[2 * m], c[2 * m + 1]);
  return _mm256_permutevar8x32_epi32(fold1i(g[0], g[1]), _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}
#endif

}  // namespace
}  // namespace TESSERA_ISA_NS
}  // namespace tessera
