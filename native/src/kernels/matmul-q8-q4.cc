// Leaves of q8_0 and q4_0 weight rows against activations quantized to 8-bit
// blocks of 32. Per block the integer dot is exact; the leaf is
//   float(isum) * (wd * xd)        (two float32 roundings, in that order)
// with wd the weight block's f16 scale. isum < 2^24, so float(isum) is exact
// and every path (VNNI, AVX2, portable) produces the same bits.
//   q8_0: isum = Σ w·x                (w int8)
//   q4_0: isum = Σ (q - 8)·x = Σ q·x - 8·Σx   (q the unsigned nibble)
#include "kernel-functions.h"
#include "fold.h"

namespace tessera {
namespace TESSERA_ISA_NS {
namespace {

inline float blockScale(const uint8_t* block) { return halfToFloat(loadU16(block)); }

inline int32_t dotQ8_0Portable(const uint8_t* block, const int8_t* x) {
  const int8_t* w = reinterpret_cast<const int8_t*>(block + 2);
  int32_t sum = 0;
  for (int i = 0; i < 32; i++) sum += static_cast<int32_t>(w[i]) * x[i];
  return sum;
}

inline int32_t dotQ4_0Portable(const uint8_t* block, const int8_t* x) {
  const uint8_t* qs = block + 2;
  int32_t sum = 0;
  for (int i = 0; i < 16; i++) {
    sum += (static_cast<int32_t>(qs[i] & 0x0f) - 8) * x[i];
    sum += (static_cast<int32_t>(qs[i] >> 4) - 8) * x[i + 16];
  }
  return sum;
}

/** Leaves [first, numBlocks) one block at a time. */
template <typename Dot>
void leavesPortable(const uint8_t* w, const QuantizedRow& x, int first, int numBlocks, int blockBytes, float* leaves,
                    Dot dot) {
  for (int b = first; b < numBlocks; b++) {
    const uint8_t* block = w + static_cast<size_t>(b) * blockBytes;
    const int32_t isum = dot(block, x.q + 32 * b);
    leaves[b] = static_cast<float>(isum) * (blockScale(block) * x.d[b]);
  }
}

#if defined(TESSERA_AVX512)
/** 16 f16 scales at stride `blockBytes` → float32. */
inline __m512 gatherScales(const uint8_t* first, int blockBytes) {
  // Scalar loads beat vpgatherdd here (gathers are slow on AMD and small cores).
  alignas(32) uint16_t halves[16];
  for (int j = 0; j < 16; j++) halves[j] = loadU16(first + j * blockBytes);
  return _mm512_cvtph_ps(_mm256_load_si256(reinterpret_cast<const __m256i*>(halves)));
}

inline void storeLeaves16(float* leaves, __m512i isum, const uint8_t* firstBlock, int blockBytes, const float* xd) {
  const __m512 scale = _mm512_mul_ps(gatherScales(firstBlock, blockBytes), _mm512_loadu_ps(xd));
  _mm512_storeu_ps(leaves, _mm512_mul_ps(_mm512_cvtepi32_ps(isum), scale));
}

int leavesQ8_0Avx512(const uint8_t* w, const QuantizedRow& x, int numBlocks, float* leaves) {
  const __m512i flip = _mm512_set1_epi8(static_cast<char>(0x80));
  const int groups = numBlocks / 16;
  for (int group = 0; group < groups; group++) {
    const uint8_t* base = w + static_cast<size_t>(group) * 16 * kQ8_0BlockBytes;
    const int8_t* xq = x.q + group * 512;
    __m512i v[8];
    for (int p = 0; p < 8; p++) {
      const uint8_t* a = base + 2 * p * kQ8_0BlockBytes + 2;
      const __m512i wq = _mm512_inserti64x4(
          _mm512_castsi256_si512(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(a))),
          _mm256_loadu_si256(reinterpret_cast<const __m256i*>(a + kQ8_0BlockBytes)), 1);
      // dpbusd wants one unsigned operand: (x + 128)·w - 128·w = x·w, exactly.
      const __m512i xu = _mm512_xor_si512(_mm512_loadu_si512(xq + 64 * p), flip);
      const __m512i biased = _mm512_dpbusd_epi32(_mm512_setzero_si512(), xu, wq);
      const __m512i bias = _mm512_dpbusd_epi32(_mm512_setzero_si512(), flip, wq);
      v[p] = _mm512_sub_epi32(biased, bias);
    }
    storeLeaves16(leaves + group * 16, sumSixteenOfEight(v), base, kQ8_0BlockBytes, x.d + group * 16);
  }
  return groups * 16;
}

int leavesQ4_0Avx512(const uint8_t* w, const QuantizedRow& x, int numBlocks, float* leaves) {
  const __m512i low = _mm512_set1_epi8(0x0f);
  // Quad-words of two 64-byte activation loads: low halves (elements 0..15) and high halves of 4 blocks.
  const __m512i lowHalves = _mm512_setr_epi64(0, 1, 4, 5, 8, 9, 12, 13);
  const __m512i highHalves = _mm512_setr_epi64(2, 3, 6, 7, 10, 11, 14, 15);
  const int groups = numBlocks / 16;
  for (int group = 0; group < groups; group++) {
    const uint8_t* base = w + static_cast<size_t>(group) * 16 * kQ4_0BlockBytes;
    const int8_t* xq = x.q + group * 512;
    __m512i u[4];
    for (int j = 0; j < 4; j++) {
      const uint8_t* b = base + 4 * j * kQ4_0BlockBytes + 2;
      __m512i qs = _mm512_castsi128_si512(_mm_loadu_si128(reinterpret_cast<const __m128i*>(b)));
      qs = _mm512_inserti32x4(qs, _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + kQ4_0BlockBytes)), 1);
      qs = _mm512_inserti32x4(qs, _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 2 * kQ4_0BlockBytes)), 2);
      qs = _mm512_inserti32x4(qs, _mm_loadu_si128(reinterpret_cast<const __m128i*>(b + 3 * kQ4_0BlockBytes)), 3);
      const __m512i x0 = _mm512_loadu_si512(xq + 128 * j);
      const __m512i x1 = _mm512_loadu_si512(xq + 128 * j + 64);
      const __m512i xLow = _mm512_permutex2var_epi64(x0, lowHalves, x1);
      const __m512i xHigh = _mm512_permutex2var_epi64(x0, highHalves, x1);
      __m512i acc = _mm512_dpbusd_epi32(_mm512_setzero_si512(), _mm512_and_si512(qs, low), xLow);
      acc = _mm512_dpbusd_epi32(acc, _mm512_and_si512(_mm512_srli_epi16(qs, 4), low), xHigh);
      u[j] = acc;
    }
    // Σx per block of 32 from the 16-element sums, then isum = Σq·x - 8·Σx.
    const __m512i s0 = _mm512_loadu_si512(x.sums16 + group * 32);
    const __m512i s1 = _mm512_loadu_si512(x.sums16 + group * 32 + 16);
    const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
    const __m512i odd = _mm512_setr_epi32(1, 3, 5, 7, 9, 11, 13, 15, 17, 19, 21, 23, 25, 27, 29, 31);
    const __m512i xsum = _mm512_add_epi32(_mm512_permutex2var_epi32(s0, even, s1), _mm512_permutex2var_epi32(s0, odd, s1));
    const __m512i isum = _mm512_sub_epi32(sumSixteenOfFour(u), _mm512_slli_epi32(xsum, 3));
    storeLeaves16(leaves + group * 16, isum, base, kQ4_0BlockBytes, x.d + group * 16);
  }
  return groups * 16;
}
#elif defined(TESSERA_AVX2)
inline void storeLeaves8(float* leaves, __m256i isum, const uint8_t* firstBlock, int blockBytes, const float* xd) {
  float scales[8];
  for (int j = 0; j < 8; j++) scales[j] = _cvtsh_ss(loadU16(firstBlock + j * blockBytes));
  const __m256 scale = _mm256_mul_ps(_mm256_loadu_ps(scales), _mm256_loadu_ps(xd));
  _mm256_storeu_ps(leaves, _mm256_mul_ps(_mm256_cvtepi32_ps(isum), scale));
}

int leavesQ8_0Avx2(const uint8_t* w, const QuantizedRow& x, int numBlocks, float* leaves) {
  const __m256i ones = _mm256_set1_epi16(1);
  const int groups = numBlocks / 8;
  for (int group = 0; group < groups; group++) {
    const uint8_t* base = w + static_cast<size_t>(group) * 8 * kQ8_0BlockBytes;
    __m256i v[8];
    for (int j = 0; j < 8; j++) {
      const __m256i wq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(base + j * kQ8_0BlockBytes + 2));
      const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.q + (group * 8 + j) * 32));
      // |w|·(x·sign w): exact for w = -128 too, since |-128| reads as unsigned 128.
      const __m256i pairs = _mm256_maddubs_epi16(_mm256_abs_epi8(wq), _mm256_sign_epi8(xq, wq));
      v[j] = _mm256_madd_epi16(pairs, ones);
    }
    storeLeaves8(leaves + group * 8, sumEightOfEight(v), base, kQ8_0BlockBytes, x.d + group * 8);
  }
  return groups * 8;
}

int leavesQ4_0Avx2(const uint8_t* w, const QuantizedRow& x, int numBlocks, float* leaves) {
  const __m256i ones = _mm256_set1_epi16(1);
  const __m128i low = _mm_set1_epi8(0x0f);
  const int groups = numBlocks / 8;
  for (int group = 0; group < groups; group++) {
    const uint8_t* base = w + static_cast<size_t>(group) * 8 * kQ4_0BlockBytes;
    __m256i v[8];
    for (int j = 0; j < 8; j++) {
      const __m128i qs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(base + j * kQ4_0BlockBytes + 2));
      const __m256i q = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(qs, 4), low), _mm_and_si128(qs, low));
      const __m256i xq = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.q + (group * 8 + j) * 32));
      v[j] = _mm256_madd_epi16(_mm256_maddubs_epi16(q, xq), ones);
    }
    const __m256i s0 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.sums16 + group * 16));
    const __m256i s1 = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x.sums16 + group * 16 + 8));
    // hadd pairs adjacent sums within 128-bit halves: [s0 0..3 | s1 0..3 | s0 4..7 | s1 4..7] → reorder.
    const __m256i xsum = _mm256_permute4x64_epi64(_mm256_hadd_epi32(s0, s1), _MM_SHUFFLE(3, 1, 2, 0));
    const __m256i isum = _mm256_sub_epi32(sumEightOfEight(v), _mm256_slli_epi32(xsum, 3));
    storeLeaves8(leaves + group * 8, isum, base, kQ4_0BlockBytes, x.d + group * 8);
  }
  return groups * 8;
}
#endif

}  // namespace

void leavesQ8_0(const uint8_t* w, const QuantizedRow& x, int numBlocks, float* leaves) {
  int done = 0;
#if defined(TESSERA_AVX512)
  done = leavesQ8_0Avx512(w, x, numBlocks, leaves);
#elif defined(TESSERA_AVX2)
  done = leavesQ8_0Avx2(w, x, numBlocks, leaves);
#endif
  leavesPortable(w, x, done, numBlocks, kQ8_0BlockBytes, leaves, dotQ8_0Portable);
}

void leavesQ4_0(const uint8_t* w, const QuantizedRow& x, int numBlocks, float* leaves) {
  int done = 0;
#if defined(TESSERA_AVX512)
  done = leavesQ4_0Avx512(w, x, numBlocks, leaves);
#elif defined(TESSERA_AVX2)
  done = leavesQ4_0Avx2(w, x, numBlocks, leaves);
#endif
  leavesPortable(w, x, done, numBlocks, kQ4_0BlockBytes, leaves, dotQ4_0Portable);
}

}  // namespace TESSERA_ISA_NS
}  // namespace tessera
