// f32/f16/bf16 matmul on weights packed in tiles of 16 rows (packed-tile.h):
// element k of a leaf is one load of 16 values, one per row, so a leaf's 16 products
// p_i = fma(x[i+16], w[i+16], x[i]·w[i]) and their folds (i + 8, + 4, + 2, + 1)
// run with lanes = rows, exactly the order of the row kernels
// (matmul-float.cc), and leaves go straight into the tree.
#include "kernel-functions.h"
#include "float-leaf.h"
#include "tree-vector.h"

namespace tessera {
namespace TESSERA_ISA_NS {
namespace {

constexpr int kFloatTileTokens = 2;

#if defined(TESSERA_AVX512)
/** Element k of a leaf: 16 values, one per row, as float32. */
template <DType kType>
inline __m512 element(const uint8_t* leaf, int k) {
  if (kType == DType::F32) return _mm512_loadu_ps(reinterpret_cast<const float*>(leaf) + 16 * k);
  const __m256i raw = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(leaf + 32 * k));
  if (kType == DType::F16) return _mm512_cvtph_ps(raw);
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(raw), 16));
}

/**
 * Leaf l of 16 rows for one token, its elements read in address order: the
 * same products and folds as below, but a decode streaming f16 from memory
 * ran about 10% faster this way than touching the leaf's four quarters in turn.
 */
template <DType kType>
inline void leafFloatOneToken(const uint8_t* leaf, const float* x, __m512* out) {
  __m512 p[16];
  for (int i = 0; i < 16; i++) p[i] = _mm512_mul_ps(_mm512_set1_ps(x[i]), element<kType>(leaf, i));
  for (int i = 0; i < 16; i++) p[i] = _mm512_fmadd_ps(_mm512_set1_ps(x[i + 16]), element<kType>(leaf, i + 16), p[i]);
  __m512 f8[8], f4[4];
  for (int i = 0; i < 8; i++) f8[i] = _mm512_add_ps(p[i], p[i + 8]);
  for (int i = 0; i < 4; i++) f4[i] = _mm512_add_ps(f8[i], f8[i + 4]);
  out[0] = _mm512_add_ps(_mm512_add_ps(f4[0], f4[2]), _mm512_add_ps(f4[1], f4[3]));
}

/** Leaf l of 16 rows for kTokens tokens (x padded with zeros to whole leaves). */
template <DType kType, int kTokens>
inline void leafFloat(const uint8_t* tile, int l, const float* const* xs, __m512* out) {
  const uint8_t* leaf = tile + static_cast<size_t>(l) * 32 * 16 * (kType == DType::F32 ? 4 : 2);
  if constexpr (kTokens == 1) return leafFloatOneToken<kType>(leaf, xs[0] + 32 * l, out);
  __m512 f8[kTokens][8];
  for (int i = 0; i < 8; i++) {
    const __m512 w0 = element<kType>(leaf, i), w8 = element<kType>(leaf, i + 8);
    const __m512 w16 = element<kType>(leaf, i + 16), w24 = element<kType>(leaf, i + 24);
    for (int j = 0; j < kTokens; j++) {
      const float* x = xs[j] + 32 * l;
      const __m512 p = _mm512_fmadd_ps(_mm512_set1_ps(x[i + 16]), w16, _mm512_mul_ps(_mm512_set1_ps(x[i]), w0));
      const __m512 p8 = _mm512_fmadd_ps(_mm512_set1_ps(x[i + 24]), w24, _mm512_mul_ps(_mm512_set1_ps(x[i + 8]), w8));
      f8[j][i] = _mm512_add_ps(p, p8);
    }
  }
  for (int j = 0; j < kTokens; j++) {
    __m512 f4[4], f2[2];
    for (int i = 0; i < 4; i++) f4[i] = _mm512_add_ps(f8[j][i], f8[j][i + 4]);
    for (int i = 0; i < 2; i++) f2[i] = _mm512_add_ps(f4[i], f4[i + 2]);
    out[j] = _mm512_add_ps(f2[0], f2[1]);
  }
}

template <DType kType>
void tileMatmulFloatAvx512(const uint8_t* tile, const float* const* xs, int numTokens, const TreePlan& plan, float* out,
                           int64_t outStride, int numRows) {
  const __mmask16 valid = static_cast<__mmask16>((1u << numRows) - 1);
  for (int t = 0; t < numTokens; t += kFloatTileTokens) {
    __m512 results[kFloatTileTokens];
    const int count = numTokens - t < kFloatTileTokens ? numTokens - t : kFloatTileTokens;
    if (count == 2) {
      foldTree<2, false>(plan, [&](int l, __m512* values) { leafFloat<kType, 2>(tile, l, xs + t, values); }, results);
    } else {
      foldTree<1, false>(plan, [&](int l, __m512* values) { leafFloat<kType, 1>(tile, l, xs + t, values); }, results);
    }
    for (int j = 0; j < count; j++) _mm512_mask_storeu_ps(out + (t + j) * outStride, valid, results[j]);
  }
}
#endif

/** One row (lane) of a tile, portably: the defining leaf, then the scalar tree. */
[[maybe_unused]] void tileRowFloatPortable(DType dtype, const uint8_t* tile, int numLeaves, int lane, const float* x,
                                           const TreePlan& plan, float* leaves, float* out) {
  const size_t size = dtype == DType::F32 ? 4 : 2;
  for (int l = 0; l < numLeaves; l++) {
    float w[32];
    for (int k = 0; k < 32; k++) {
      uint32_t bits = 0;
      std::memcpy(&bits, tile + ((static_cast<size_t>(l) * 32 + k) * 16 + lane) * size, size);
      if (dtype == DType::F16) {
        w[k] = halfToFloat(static_cast<uint16_t>(bits));
      } else {
        if (dtype == DType::BF16) bits <<= 16;
        std::memcpy(&w[k], &bits, 4);
      }
    }
    leaves[l] = leafPortable(x + 32 * l, w);
  }
  *out = reduceLeaves(leaves, plan);
}

}  // namespace

void tileMatmulFloat(DType dtype, const uint8_t* tile, int numLeaves, const float* const* xs, int numTokens,
                     const TreePlan& plan, float* scratch, float* out, int64_t outStride, int numRows) {
#if defined(TESSERA_AVX512)
  (void)numLeaves;
  (void)scratch;
  switch (dtype) {
    case DType::F32: return tileMatmulFloatAvx512<DType::F32>(tile, xs, numTokens, plan, out, outStride, numRows);
    case DType::BF16: return tileMatmulFloatAvx512<DType::BF16>(tile, xs, numTokens, plan, out, outStride, numRows);
    default: return tileMatmulFloatAvx512<DType::F16>(tile, xs, numTokens, plan, out, outStride, numRows);
  }
#else
  for (int t = 0; t < numTokens; t++) {
    for (int r = 0; r < numRows; r++) {
      tileRowFloatPortable(dtype, tile, numLeaves, r, xs[t], plan, scratch, out + t * outStride + r);
    }
  }
#endif
}

}  // namespace TESSERA_ISA_NS
}  // namespace tessera
