// q8_0/q4_0 matmul on weights packed in tiles of 16 rows (packed-tile.h):
// each 32-bit lane of a register holds 4 quants of one row, so one VNNI
// dpbusd does 4 multiply-adds for each of 16 rows against one broadcast of a
// token's 4 activation quants, and leaves come out with lanes = rows, ready
// for a vector tree. No shuffles, no horizontal sums: decode reads the tile
// once, batches reuse it for every token.
//
// Each lane computes exactly what the per-row kernels compute: the block's
// exact integer dot (the unsigned weights over-count by bias·Σx: 128 for
// q8_0 stored as q + 128, 8 for q4_0's nibbles), leaf = float(isum)·(wd·xd),
// then the halving tree with the same pairs. So the bits do not depend on
// the layout, the batch or the variant.
#include "kernel-functions.h"
#include "tree-vector.h"

namespace tessera {
namespace TESSERA_ISA_NS {
namespace {

inline size_t tileBlockBytes(DType dtype) { return 16 * (dtype == DType::Q8_0 ? kQ8_0BlockBytes : kQ4_0BlockBytes); }

#if defined(TESSERA_AVX512)
/** Leaves of block b (16 rows each) for kTokens tokens. */
template <int kTokens, bool kQ4>
inline void blockLeaves(const uint8_t* tile, int b, const QuantizedRow* tokens, __m512* leaves, const PrefetchShare& share) {
  constexpr size_t blockBytes = 16 * (kQ4 ? kQ4_0BlockBytes : kQ8_0BlockBytes);
  constexpr int quantBytes = kQ4 ? 256 : 512;
  const uint8_t* block = tile + static_cast<size_t>(b) * blockBytes;
  if (kTokens > 1) prefetchLines(block, blockBytes, share);  // the next tile's block b
  __m512i w[8];  // w[g]: elements 4g..4g+3 of each row (q4_0: w[4 + g] holds 16 + 4g..)
  if (kQ4) {
    const __m512i low = _mm512_set1_epi8(0x0f);
    for (int g = 0; g < 4; g++) {
      const __m512i bytes = _mm512_loadu_si512(block + 64 * g);
      w[g] = _mm512_and_si512(bytes, low);
      w[4 + g] = _mm512_and_si512(_mm512_srli_epi16(bytes, 4), low);
    }
  } else {
    for (int g = 0; g < 8; g++) w[g] = _mm512_loadu_si512(block + 64 * g);
  }
  const __m512 wd = _mm512_cvtph_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + quantBytes)));
  // q4_0's w[4 + g] pairs with elements 16 + 4g; q8_0's w[g] with 4g.
  auto four = [&](int j, int g) {
    int32_t bytes;
    std::memcpy(&bytes, tokens[j].q + 32 * b + (kQ4 && g >= 4 ? 16 + 4 * (g - 4) : 4 * g), 4);
    return _mm512_set1_epi32(bytes);
  };
  __m512i acc[kTokens];
  for (int j = 0; j < kTokens; j++) acc[j] = _mm512_set1_epi32(tokens[j].tileBias[b]);
  if (kTokens == 1 && !kQ4) {
    // Decode: two accumulator chains (integer sums are exact in any order) halve the dpbusd latency chain.
    __m512i other = _mm512_setzero_si512();
    for (int g = 0; g < 8; g += 2) {
      acc[0] = _mm512_dpbusd_epi32(acc[0], w[g], four(0, g));
      other = _mm512_dpbusd_epi32(other, w[g + 1], four(0, g + 1));
    }
    acc[0] = _mm512_add_epi32(acc[0], other);
  } else {
    // Weight group by weight group across the tokens, each group spent at once: the tokens are the
    // independent chains, and few registers stay live (16-token q8_0 batches from L2: 278 → 288 GOP/s
    // a thread at 4 tokens a pass, 319 at 8).
    for (int g = 0; g < 8; g++) {
      for (int j = 0; j < kTokens; j++) acc[j] = _mm512_dpbusd_epi32(acc[j], w[g], four(j, g));
    }
  }
  for (int j = 0; j < kTokens; j++) {
    const __m512 scale = _mm512_mul_ps(wd, _mm512_set1_ps(tokens[j].d[b]));
    leaves[j] = _mm512_mul_ps(_mm512_cvtepi32_ps(acc[j]), scale);
  }
}

/**
 * The tile's results for kTokens tokens. Leaves are folded into the tree as
 * they come: a buffer of leaves as long as a row of blocks competed with the
 * weights for L1 and halved decode bandwidth on long rows.
 */
template <int kTokens, bool kQ4>
void tilePass(const uint8_t* tile, const QuantizedRow* tokens, const TreePlan& plan, const PrefetchShare& share, __m512* results) {
  foldTree<kTokens>(plan, [&](int b, __m512* values) { blockLeaves<kTokens, kQ4>(tile, b, tokens, values, share); }, results);
}

template <bool kQ4>
void tileMatmulAvx512(const uint8_t* tile, const QuantizedRow* tokens, int numTokens, const TreePlan& plan, float* out,
                      int64_t outStride, int numRows) {
  const size_t tileBytes = static_cast<size_t>(plan.n) * 16 * (kQ4 ? kQ4_0BlockBytes : kQ8_0BlockBytes);
  // q4_0's nibble unpacking holds more registers: 4 tokens a pass measured faster there, 8 for q8_0.
  constexpr int kPassTokens = kQ4 ? 4 : 8;
  tileTokenPasses<kPassTokens>(tileBytes, numTokens, out, outStride, numRows, [&](auto count, int t, const PrefetchShare& share, __m512* results) {
    tilePass<decltype(count)::value, kQ4>(tile, tokens + t, plan, share, results);
  });
}
#endif

/** One row (lane) of a tile, portably: the same leaves, then the scalar tree. */
[[maybe_unused]] void tileRowPortable(DType dtype, const uint8_t* tile, int numBlocks, int lane, const QuantizedRow& x, const TreePlan& plan,
                     float* leaves, float* out) {
  const bool q4 = dtype == DType::Q4_0;
  const int quantBytes = q4 ? 256 : 512;
  for (int b = 0; b < numBlocks; b++) {
    const uint8_t* block = tile + static_cast<size_t>(b) * tileBlockBytes(dtype);
    const int8_t* xq = x.q + 32 * b;
    int32_t isum = x.tileBias[b];
    for (int g = 0; g < (q4 ? 4 : 8); g++) {
      for (int i = 0; i < 4; i++) {
        const uint8_t byte = block[64 * g + 4 * lane + i];
        if (q4) {
          isum += (byte & 0x0f) * xq[4 * g + i] + (byte >> 4) * xq[16 + 4 * g + i];
        } else {
          isum += byte * xq[4 * g + i];
        }
      }
    }
    const float wd = halfToFloat(loadU16(block + quantBytes + 2 * lane));
    leaves[b] = static_cast<float>(isum) * (wd * x.d[b]);
  }
  *out = reduceLeaves(leaves, plan);
}

}  // namespace

void tileMatmul(DType dtype, const uint8_t* tile, int numBlocks, const QuantizedRow* tokens, int numTokens,
                const TreePlan& plan, float* scratch, float* out, int64_t outStride, int numRows) {
  if (dtype == DType::Q4_K || dtype == DType::Q6_K) {
    return tileMatmulKQuant(dtype, tile, numBlocks, tokens, numTokens, plan, scratch, out, outStride, numRows);
  }
#if defined(TESSERA_AVX512)
  (void)numBlocks;
  (void)scratch;
  if (dtype == DType::Q4_0) return tileMatmulAvx512<true>(tile, tokens, numTokens, plan, out, outStride, numRows);
  return tileMatmulAvx512<false>(tile, tokens, numTokens, plan, out, outStride, numRows);
#else
  for (int t = 0; t < numTokens; t++) {
    for (int r = 0; r < numRows; r++) tileRowPortable(dtype, tile, numBlocks, r, tokens[t], plan, scratch, out + t * outStride + r);
  }
#endif
}

}  // namespace TESSERA_ISA_NS
}  // namespace tessera
