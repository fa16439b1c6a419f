// Leaves of q4_k and q6_k weight rows (ggml's 256-element super-blocks)
// against activations quantized to 8-bit blocks of 256. A super-block is one
// leaf; its integer parts are exact and the leaf is, in this order,
//   q4_k: float(A) * (d·xd) - float(B) * (dmin·xd),
//         A = Σj sc_j Σ q·x,  B = Σj m_j Σ x        (j over the 8 sub-blocks of 32)
//   q6_k: float(A) * (d·xd),
//         A = Σj sc_j Σ (q - 32)·x                   (j over the 16 sub-blocks of 16)
// so every ISA variant gives the same bits.
#include "kernel-functions.h"
#include "kquant-bits.h"

namespace tessera {
namespace TESSERA_ISA_NS {
namespace {

/** Σ m_j · Σx over sub-block j (32 elements = two 16-sums). */
inline int32_t minTermQ4_K(const uint8_t* block, const int32_t* sums16) {
  int32_t total = 0;
  for (int j = 0; j < 8; j++) {
    int32_t scale, min;
    scaleMinK4(j, block + 4, &scale, &min);
    total += min * (sums16[2 * j] + sums16[2 * j + 1]);
  }
  return total;
}

inline float leafQ4_K(const uint8_t* block, int32_t a, int32_t b, float xd) {
  const float d = halfToFloat(loadU16(block));
  const float dmin = halfToFloat(loadU16(block + 2));
  return static_cast<float>(a) * (d * xd) - static_cast<float>(b) * (dmin * xd);
}

[[maybe_unused]] int32_t scaledDotQ4_KPortable(const uint8_t* block, const int8_t* x) {
  const uint8_t* qs = block + 16;
  int32_t total = 0;
  for (int j = 0; j < 8; j++) {
    int32_t scale, min;
    scaleMinK4(j, block + 4, &scale, &min);
    const uint8_t* chunk = qs + 32 * (j / 2);
    const int shift = (j % 2) * 4;
    int32_t dot = 0;
    for (int l = 0; l < 32; l++) dot += ((chunk[l] >> shift) & 0x0f) * x[32 * j + l];
    total += scale * dot;
  }
  return total;
}

/** The 6-bit value of element e of a q6_k block (ggml's dequantize_row_q6_K layout). */
inline int32_t q6Value(const uint8_t* block, int e) {
  const int half = e / 128, quarter = (e % 128) / 32, l = e % 32;
  const uint8_t low = block[64 * half + 32 * (quarter % 2) + l];
  const uint8_t high = block[128 + 32 * half + l];
  const int nibble = quarter < 2 ? (low & 0x0f) : (low >> 4);
  return nibble | (((high >> (2 * quarter)) & 3) << 4);
}

[[maybe_unused]] int32_t scaledDotQ6_KPortable(const uint8_t* block, const int8_t* x) {
  const int8_t* scales = reinterpret_cast<const int8_t*>(block + 192);
  int32_t total = 0;
  for (int j = 0; j < 16; j++) {
    int32_t dot = 0;
    for (int i = 0; i < 16; i++) dot += (q6Value(block, 16 * j + i) - 32) * x[16 * j + i];
    total += scales[j] * dot;
  }
  return total;
}

#if defined(TESSERA_AVX2)
/** 32 unsigned bytes (≤ 63) · 32 signed bytes → 8 lanes, lane i over elements 4i..4i+3. */
inline __m256i dot32(__m256i q, __m256i x) {
#if defined(TESSERA_AVX512)
  return _mm256_dpbusd_epi32(_mm256_setzero_si256(), q, x);
#else
  return _mm256_madd_epi16(_mm256_maddubs_epi16(q, x), _mm256_set1_epi16(1));
#endif
}

inline int32_t sumLanes(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(1, 0, 3, 2)));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, _MM_SHUFFLE(2, 3, 0, 1)));
  return _mm_cvtsi128_si32(s);
}

int32_t scaledDotQ4_KAvx2(const uint8_t* block, const int8_t* x) {
  const __m256i low = _mm256_set1_epi8(0x0f);
  __m256i acc = _mm256_setzero_si256();
  for (int c = 0; c < 4; c++) {
    int32_t scaleLow, scaleHigh, min;
    scaleMinK4(2 * c, block + 4, &scaleLow, &min);
    scaleMinK4(2 * c + 1, block + 4, &scaleHigh, &min);
    const __m256i qs = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 16 + 32 * c));
    const __m256i xLow = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 64 * c));
    const __m256i xHigh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 64 * c + 32));
    const __m256i dotLow = dot32(_mm256_and_si256(qs, low), xLow);
    const __m256i dotHigh = dot32(_mm256_and_si256(_mm256_srli_epi16(qs, 4), low), xHigh);
    acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(dotLow, _mm256_set1_epi32(scaleLow)));
    acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(dotHigh, _mm256_set1_epi32(scaleHigh)));
  }
  return sumLanes(acc);
}

int32_t scaledDotQ6_KAvx2(const uint8_t* block, const int8_t* x) {
  const __m256i low = _mm256_set1_epi8(0x0f);
  const __m256i two = _mm256_set1_epi8(0x03);
  const __m256i high = _mm256_set1_epi8(0x30);
  const int8_t* scales = reinterpret_cast<const int8_t*>(block + 192);
  __m256i acc = _mm256_setzero_si256();
  for (int n = 0; n < 2; n++) {
    const __m256i qlA = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 64 * n));
    const __m256i qlB = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 64 * n + 32));
    const __m256i qh = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 128 + 32 * n));
    __m256i q[4];
    q[0] = _mm256_or_si256(_mm256_and_si256(qlA, low), _mm256_slli_epi16(_mm256_and_si256(qh, two), 4));
    q[1] = _mm256_or_si256(_mm256_and_si256(qlB, low), _mm256_slli_epi16(_mm256_and_si256(_mm256_srli_epi16(qh, 2), two), 4));
    q[2] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qlA, 4), low), _mm256_and_si256(qh, high));
    q[3] = _mm256_or_si256(_mm256_and_si256(_mm256_srli_epi16(qlB, 4), low), _mm256_and_si256(_mm256_srli_epi16(qh, 2), high));
    for (int k = 0; k < 4; k++) {
      const int j = 8 * n + 2 * k;  // sub-blocks j (lanes 0..3) and j + 1 (lanes 4..7)
      const __m256i xk = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + 128 * n + 32 * k));
      const __m256i scale = _mm256_set_m128i(_mm_set1_epi32(scales[j + 1]), _mm_set1_epi32(scales[j]));
      acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(dot32(q[k], xk), scale));
    }
  }
  return sumLanes(acc);
}
#endif

/** Σ_j sc_j · 32 · Σx over sub-block j: what the unsigned 6-bit values over-count. */
inline int32_t offsetTermQ6_K(const uint8_t* block, const int32_t* sums16) {
  const int8_t* scales = reinterpret_cast<const int8_t*>(block + 192);
  int32_t total = 0;
  for (int j = 0; j < 16; j++) total += scales[j] * sums16[j];
  return 32 * total;
}

}  // namespace

void leavesQ4_K(const uint8_t* w, const QuantizedRow& x, int numBlocks, float* leaves) {
  for (int b = 0; b < numBlocks; b++) {
    const uint8_t* block = w + static_cast<size_t>(b) * kQ4_KBlockBytes;
    const int8_t* xq = x.q + 256 * b;
#if defined(TESSERA_AVX2)
    const int32_t a = scaledDotQ4_KAvx2(block, xq);
#else
    const int32_t a = scaledDotQ4_KPortable(block, xq);
#endif
    leaves[b] = leafQ4_K(block, a, minTermQ4_K(block, x.sums16 + 16 * b), x.d[b]);
  }
}

void leavesQ6_K(const uint8_t* w, const QuantizedRow& x, int numBlocks, float* leaves) {
  for (int b = 0; b < numBlocks; b++) {
    const uint8_t* block = w + static_cast<size_t>(b) * kQ6_KBlockBytes;
    const int8_t* xq = x.q + 256 * b;
#if defined(TESSERA_AVX2)
    const int32_t biased = scaledDotQ6_KAvx2(block, xq) - offsetTermQ6_K(block, x.sums16 + 16 * b);
#else
    const int32_t biased = scaledDotQ6_KPortable(block, xq);
#endif
    const float d = halfToFloat(loadU16(block + 208));
    leaves[b] = static_cast<float>(biased) * (d * x.d[b]);
  }
}

}  // namespace TESSERA_ISA_NS
}  // namespace tessera
