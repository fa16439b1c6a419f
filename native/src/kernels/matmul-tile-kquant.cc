// q4_k matmul on weights packed in tiles of 16 rows (packed-tile.h): per
// super-block of 256, the quant bytes as 16 lanes × 4 bytes (lane = row), so
// one VNNI dpbusd does 4 multiply-adds for each of 16 rows, then the 6-bit
// sub-block scales and mins unpacked to one byte per (sub-block, row).
//
// Each lane computes exactly the leaf of the row kernel (matmul-kquant.cc):
//   float(A) * (d·xd) - float(B) * (dmin·xd),
//   A = Σj sc_j Σ q·x,  B = Σj m_j Σ x          (j over the 8 sub-blocks of 32)
// with A and B exact integers, then the same halving tree, so the bits do not
// depend on the layout, the batch or the variant.
#include "kernel-functions.h"
#include "tree-vector.h"

namespace tessera {
namespace TESSERA_ISA_NS {
namespace {

constexpr size_t kQuantBytes = 2048;                 // 4 chunks × 8 groups × 16 lanes × 4 bytes
constexpr size_t kScalesAt = kQuantBytes;            // u8 [8 sub-blocks][16 lanes]
constexpr size_t kMinsAt = kScalesAt + 128;          // u8 [8][16]
constexpr size_t kScaleDAt = kMinsAt + 128;          // f16 d [16]
constexpr size_t kMinDAt = kScaleDAt + 32;           // f16 dmin [16]
static_assert(kMinDAt + 32 == kQ4_KTileBlockBytes, "packed-tile.h's q4_k tile block");

#if defined(TESSERA_AVX512)
/** The next tile's bytes are asked for while a batch's passes run (see matmul-tile.cc). */
constexpr size_t kPrefetchBeyondTile = 4096;

/** Leaves of super-block b (16 rows each) for kTokens tokens. */
template <int kTokens>
inline void blockLeaves(const uint8_t* tile, int b, const QuantizedRow* tokens, __m512* leaves, size_t ahead) {
  const uint8_t* block = tile + static_cast<size_t>(b) * kQ4_KTileBlockBytes;
  if (kTokens > 1) {
    for (size_t l = 0; l < kQ4_KTileBlockBytes; l += 64) _mm_prefetch(reinterpret_cast<const char*>(block + ahead + l), _MM_HINT_T0);
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
    const __m512i scale = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + kScalesAt + 16 * sub)));
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
    const __m512i min = _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(block + kMinsAt + 16 * sub)));
    for (int j = 0; j < kTokens; j++) {
      const int32_t* sums = tokens[j].sums16 + 16 * b + 2 * sub;
      bTerm[j] = _mm512_add_epi32(bTerm[j], _mm512_mullo_epi32(min, _mm512_set1_epi32(sums[0] + sums[1])));
    }
  }
  const __m512 d = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + kScaleDAt)));
  const __m512 dmin = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + kMinDAt)));
  for (int j = 0; j < kTokens; j++) {
    const __m512 xd = _mm512_set1_ps(tokens[j].d[b]);
    leaves[j] = _mm512_sub_ps(_mm512_mul_ps(_mm512_cvtepi32_ps(a[j]), _mm512_mul_ps(d, xd)),
                              _mm512_mul_ps(_mm512_cvtepi32_ps(bTerm[j]), _mm512_mul_ps(dmin, xd)));
  }
}

template <int kTokens>
void tilePass(const uint8_t* tile, const QuantizedRow* tokens, const TreePlan& plan, __m512* results) {
  const size_t ahead = static_cast<size_t>(plan.n) * kQ4_KTileBlockBytes + kPrefetchBeyondTile;
  foldTree<kTokens>(plan, [&](int b, __m512* values) { blockLeaves<kTokens>(tile, b, tokens, values, ahead); }, results);
}
#endif

/** One row (lane) of a tile, portably: the same A, B and leaf, then the scalar tree. */
[[maybe_unused]] void tileRowPortable(const uint8_t* tile, int numBlocks, int lane, const QuantizedRow& x, const TreePlan& plan,
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
      a += block[kScalesAt + 16 * sub + lane] * dot;
      bTerm += block[kMinsAt + 16 * sub + lane] * (x.sums16[16 * b + 2 * sub] + x.sums16[16 * b + 2 * sub + 1]);
    }
    const float d = halfToFloat(loadU16(block + kScaleDAt + 2 * lane));
    const float dmin = halfToFloat(loadU16(block + kMinDAt + 2 * lane));
    leaves[b] = static_cast<float>(a) * (d * x.d[b]) - static_cast<float>(bTerm) * (dmin * x.d[b]);
  }
  *out = reduceLeaves(leaves, plan);
}

}  // namespace

void tileMatmulQ4_K(const uint8_t* tile, int numBlocks, const QuantizedRow* tokens, int numTokens, const TreePlan& plan,
                    float* scratch, float* out, int64_t outStride, int numRows) {
#if defined(TESSERA_AVX512)
  (void)numBlocks;
  (void)scratch;
  const __mmask16 valid = static_cast<__mmask16>((1u << numRows) - 1);
  for (int t = 0; t < numTokens; t += kTileTokens) {
    const int count = numTokens - t < kTileTokens ? numTokens - t : kTileTokens;
    __m512 results[kTileTokens];
    switch (count) {
      case 4: tilePass<4>(tile, tokens + t, plan, results); break;
      case 3: tilePass<3>(tile, tokens + t, plan, results); break;
      case 2: tilePass<2>(tile, tokens + t, plan, results); break;
      default: tilePass<1>(tile, tokens + t, plan, results); break;
    }
    for (int j = 0; j < count; j++) _mm512_mask_storeu_ps(out + (t + j) * outStride, valid, results[j]);
  }
#else
  for (int t = 0; t < numTokens; t++) {
    for (int r = 0; r < numRows; r++) tileRowPortable(tile, numBlocks, r, tokens[t], plan, scratch, out + t * outStride + r);
  }
#endif
}

}  // namespace TESSERA_ISA_NS
}  // namespace tessera
