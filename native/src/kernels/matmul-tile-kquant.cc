// q4_k and q6_k matmul on weights packed in tiles of 16 rows (packed-tile.h):
// per super-block of 256, the quant bytes as 16 lanes × 4 bytes (lane = row),
// so one VNNI dpbusd does 4 multiply-adds for each of 16 rows, then the
// sub-block scales (and q4_k's mins) as one byte per (sub-block, row).
//
// Each lane computes exactly the leaf of the row kernel (matmul-kquant.cc):
//   q4_k: float(A) * (d·xd) - float(B) * (dmin·xd),
//         A = Σj sc_j Σ q·x,  B = Σj m_j Σ x      (j over the 8 sub-blocks of 32)
//   q6_k: float(A) * (d·xd),  A = Σj sc_j Σ (q - 32)·x  (16 sub-blocks of 16)
// with A and B exact integers, then the same halving tree, so the bits do not
// depend on the layout, the batch or the variant.
#include "kernel-functions.h"
#include "kquant-bits.h"
#include "tree-vector.h"

namespace tessera {
namespace TESSERA_ISA_NS {
namespace {

#if defined(TESSERA_AVX512)
/** q4_k leaves of super-block b (16 rows each) for kTokens tokens. */
template <int kTokens>
inline void blockLeavesQ4_K(const uint8_t* tile, int b, const QuantizedRow* tokens, __m512* leaves, const PrefetchShare& share) {
  const uint8_t* block = tile + static_cast<size_t>(b) * kQ4_KTileBlockBytes;
  if (kTokens > 1) {
    prefetchLines(block, kQ4_KTileBlockBytes, share);
  }
  const __m512i low = _mm512_set1_epi8(0x0f);
  __m512i a[kTokens];
  for (int j = 0; j < kTokens; j++) a[j] = _mm512_setzero_si512();
  for (int sub = 0; sub < 8; sub++) {
    // Sub-block 2c is chunk c's low nibbles, 2c + 1 its high nibbles.
    const int chunk = sub / 2;
    __m512i w[8];
    for (int g = 0; g < 8; g++) {
      const __m512i bytes = _mm512_loadu_si512(block + 64 * (8 * chunk + g));
      w[g] = sub % 2 == 0 ? _mm512_and_si512(bytes, low) : _mm512_and_si512(_mm512_srli_epi16(bytes, 4), low);
    }
    const __m512i scale = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + kQ4_KTileScalesAt + 16 * sub)));
    for (int j = 0; j < kTokens; j++) {
      const int8_t* xq = tokens[j].q + 256 * b + 32 * sub;
      __m512i even = _mm512_setzero_si512(), odd = _mm512_setzero_si512();
      for (int g = 0; g < 8; g += 2) {
        int32_t four, next;
        std::memcpy(&four, xq + 4 * g, 4);
        std::memcpy(&next, xq + 4 * g + 4, 4);
        even = _mm512_dpbusd_epi32(even, w[g], _mm512_set1_epi32(four));
        odd = _mm512_dpbusd_epi32(odd, w[g + 1], _mm512_set1_epi32(next));
      }
      a[j] = _mm512_add_epi32(a[j], _mm512_mullo_epi32(_mm512_add_epi32(even, odd), scale));
    }
  }
  __m512i bTerm[kTokens];
  for (int j = 0; j < kTokens; j++) bTerm[j] = _mm512_setzero_si512();
  for (int sub = 0; sub < 8; sub++) {
    const __m512i min = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + kQ4_KTileMinsAt + 16 * sub)));
    for (int j = 0; j < kTokens; j++) {
      const int32_t* sums = tokens[j].sums16 + 16 * b + 2 * sub;
      bTerm[j] = _mm512_add_epi32(bTerm[j], _mm512_mullo_epi32(min, _mm512_set1_epi32(sums[0] + sums[1])));
    }
  }
  const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + kQ4_KTileDAt)));
  const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + kQ4_KTileDminAt)));
  for (int j = 0; j < kTokens; j++) {
    const __m512 xd = _mm512_set1_ps(tokens[j].d[b]);
    leaves[j] = _mm512_sub_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(a[j]), _mm512_mul_ps(d, xd)),
                              _mm512_mul_ps(_mm512_cvtepi32_ps(bTerm[j]), _mm512_mul_ps(dmin, xd)));
  }
}

/** q6_k leaves of super-block b (16 rows each) for kTokens tokens. */
template <int kTokens>
inline void blockLeavesQ6_K(const uint8_t* tile, int b, const QuantizedRow* tokens, __m512* leaves, const PrefetchShare& share) {
  const uint8_t* block = tile + static_cast<size_t>(b) * kQ6_KTileBlockBytes;
  if (kTokens > 1) {
    prefetchLines(block, kQ6_KTileBlockBytes, share);
  }
  const __m512i low = _mm512_set1_epi8(0x0f), two = _mm512_set1_epi8(0x03), high = _mm512_set1_epi8(0x30);
  __m512i a[kTokens];
  for (int j = 0; j < kTokens; j++) a[j] = _mm512_setzero_si512();
  for (int run = 0; run < 4; run++) {
    // Half n, groups 4·(run % 2) .. + 3: sub-blocks 8n + 2·quarter + run % 2 for quarters 0..3.
    const int n = run / 2, firstGroup = 4 * (run % 2);
    __m512i dot[kTokens][4];
    for (int j = 0; j < kTokens; j++) {
      for (int quarter = 0; quarter < 4; quarter++) dot[j][quarter] = _mm512_setzero_si512();
    }
    for (int g = firstGroup; g < firstGroup + 4; g++) {
      const uint8_t* group = block + 64 * 3 * (8 * n + g);
      const __m512i qa = _mm512_loadu_si512(group), qb = _mm512_loadu_si512(group + 64), qh = _mm512_loadu_si512(group + 128);
      __m512i q[4];
      q[0] = _mm512_or_si512(_mm512_and_si512(qa, low), _mm512_slli_epi16(_mm512_and_si512(qh, two), 4));
      q[1] = _mm512_or_si512(_mm512_and_si512(qb, low), _mm512_slli_epi16(_mm512_and_si512(_mm512_srli_epi16(qh, 2), two), 4));
      q[2] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(qa, 4), low), _mm512_and_si512(qh, high));
      q[3] = _mm512_or_si512(_mm512_and_si512(_mm512_srli_epi16(qb, 4), low), _mm512_and_si512(_mm512_srli_epi16(qh, 2), high));
      for (int j = 0; j < kTokens; j++) {
        const int8_t* xq = tokens[j].q + 256 * b + 128 * n + 4 * g;
        for (int quarter = 0; quarter < 4; quarter++) {
          int32_t four;
          std::memcpy(&four, xq + 32 * quarter, 4);
          dot[j][quarter] = _mm512_dpbusd_epi32(dot[j][quarter], q[quarter], _mm512_set1_epi32(four));
        }
      }
    }
    for (int quarter = 0; quarter < 4; quarter++) {
      const int sub = 8 * n + 2 * quarter + run % 2;
      const __m512i scale = _mm512_cvtepi8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + kQ6_KTileScalesAt + 16 * sub)));
      for (int j = 0; j < kTokens; j++) {
        // Σ (q - 32)·x = Σ q·x - 32·Σx over the sub-block of 16.
        const __m512i biased = _mm512_sub_epi32(dot[j][quarter], _mm512_set1_epi32(32 * tokens[j].sums16[16 * b + sub]));
        a[j] = _mm512_add_epi32(a[j], _mm512_mullo_epi32(biased, scale));
      }
    }
  }
  const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + kQ6_KTileDAt)));
  for (int j = 0; j < kTokens; j++) {
    leaves[j] = _mm512_mul_ps(_mm512_cvtepi32_ps(a[j]), _mm512_mul_ps(d, _mm512_set1_ps(tokens[j].d[b])));
  }
}

template <int kTokens, bool kQ6>
void tilePass(const uint8_t* tile, const QuantizedRow* tokens, const TreePlan& plan, const PrefetchShare& share, __m512* results) {
  foldTree<kTokens>(
      plan,
      [&](int b, __m512* values) {
        if (kQ6) {
          blockLeavesQ6_K<kTokens>(tile, b, tokens, values, share);
        } else {
          blockLeavesQ4_K<kTokens>(tile, b, tokens, values, share);
        }
      },
      results);
}

template <bool kQ6>
void tileMatmulAvx512(const uint8_t* tile, const QuantizedRow* tokens, int numTokens, const TreePlan& plan, float* out,
                      int64_t outStride, int numRows) {
  const size_t tileBytes = static_cast<size_t>(plan.n) * (kQ6 ? kQ6_KTileBlockBytes : kQ4_KTileBlockBytes);
  // Four tokens a pass: the k-quant leaves hold more state per token than q8_0's.
  constexpr int kPassTokens = 4;
  tileTokenPasses<kPassTokens>(tileBytes, numTokens, out, outStride, numRows, [&](auto count, int t, const PrefetchShare& share, __m512* results) {
    tilePass<decltype(count)::value, kQ6>(tile, tokens + t, plan, share, results);
  });
}
#endif

/** One row (lane) of a tile, portably: the same A, B and leaf, then the scalar tree. */
[[maybe_unused]] void tileRowQ4_KPortable(const uint8_t* tile, int numBlocks, int lane, const QuantizedRow& x, const TreePlan& plan,
                                      float* leaves, float* out) {
  for (int b = 0; b < numBlocks; b++) {
    const uint8_t* block = tile + static_cast<size_t>(b) * kQ4_KTileBlockBytes;
    int32_t a = 0, bTerm = 0;
    for (int sub = 0; sub < 8; sub++) {
      const int chunk = sub / 2, shift = 4 * (sub % 2);
      const int8_t* xq = x.q + 256 * b + 32 * sub;
      int32_t dot = 0;
      for (int g = 0; g < 8; g++) {
        for (int i = 0; i < 4; i++) dot += ((block[64 * (8 * chunk + g) + 4 * lane + i] >> shift) & 0x0f) * xq[4 * g + i];
      }
      a += block[kQ4_KTileScalesAt + 16 * sub + lane] * dot;
      bTerm += block[kQ4_KTileMinsAt + 16 * sub + lane] * (x.sums16[16 * b + 2 * sub] + x.sums16[16 * b + 2 * sub + 1]);
    }
    const float d = halfToFloat(loadU16(block + kQ4_KTileDAt + 2 * lane));
    const float dmin = halfToFloat(loadU16(block + kQ4_KTileDminAt + 2 * lane));
    leaves[b] = static_cast<float>(a) * (d * x.d[b]) - static_cast<float>(bTerm) * (dmin * x.d[b]);
  }
  *out = reduceLeaves(leaves, plan);
}

/** q6_k: one row (lane) of a tile, portably. */
[[maybe_unused]] void tileRowQ6_KPortable(const uint8_t* tile, int numBlocks, int lane, const QuantizedRow& x, const TreePlan& plan,
                                          float* leaves, float* out) {
  for (int b = 0; b < numBlocks; b++) {
    const uint8_t* block = tile + static_cast<size_t>(b) * kQ6_KTileBlockBytes;
    int32_t a = 0;
    for (int sub = 0; sub < 16; sub++) {
      const int n = sub / 8, quarter = (sub % 8) / 2, firstGroup = 4 * (sub % 2);
      int32_t dot = 0;
      for (int g = firstGroup; g < firstGroup + 4; g++) {
        const uint8_t* group = block + 64 * 3 * (8 * n + g) + 4 * lane;
        for (int i = 0; i < 4; i++) dot += q6TileValue(group[i], group[64 + i], group[128 + i], quarter) * x.q[256 * b + 128 * n + 32 * quarter + 4 * g + i];
      }
      a += static_cast<int8_t>(block[kQ6_KTileScalesAt + 16 * sub + lane]) * (dot - 32 * x.sums16[16 * b + sub]);
    }
    const float d = halfToFloat(loadU16(block + kQ6_KTileDAt + 2 * lane));
    leaves[b] = static_cast<float>(a) * (d * x.d[b]);
  }
  *out = reduceLeaves(leaves, plan);
}

}  // namespace

void tileMatmulKQuant(DType dtype, const uint8_t* tile, int numBlocks, const QuantizedRow* tokens, int numTokens,
                      const TreePlan& plan, float* scratch, float* out, int64_t outStride, int numRows) {
#if defined(TESSERA_AVX512)
  (void)numBlocks;
  (void)scratch;
  if (dtype == DType::Q6_K) return tileMatmulAvx512<true>(tile, tokens, numTokens, plan, out, outStride, numRows);
  return tileMatmulAvx512<false>(tile, tokens, numTokens, plan, out, outStride, numRows);
#else
  for (int t = 0; t < numTokens; t++) {
    for (int r = 0; r < numRows; r++) {
      float* result = out + t * outStride + r;
      if (dtype == DType::Q6_K) {
        tileRowQ6_KPortable(tile, numBlocks, r, tokens[t], plan, scratch, result);
      } else {
        tileRowQ4_KPortable(tile, numBlocks, r, tokens[t], plan, scratch, result);
      }
    }
  }
#endif
}

}  // namespace TESSERA_ISA_NS
}  // namespace tessera
