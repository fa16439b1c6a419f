// Batched q8_0/q4_0 matmul on tiles of 16 weight rows repacked so that each
// 32-bit lane of a register holds 4 quants of one row: one VNNI dpbusd then
// does 4 multiply-adds for each of 16 rows, and a token's 4 activation quants
// are one broadcast. The tile is packed once per call and reused by every
// token, so weights stream from memory once per batch.
//
// Each lane computes exactly what the per-row kernels compute: the block's
// exact integer dot, leaf = float(isum) · (wd · xd), then the halving tree with
// the same pairs. So a row's result is the same bits in a batch as alone.
#include "kernel-functions.h"
#include "tree-vector.h"

namespace tessera {
namespace TESSERA_ISA_NS {
namespace {

#if defined(TESSERA_AVX512)
/** 8 rows × 8 dwords → dword g of the 8 rows in out[g]. */
inline void transposeEight(const __m256i* r, __m256i* out) {
  __m256i t[8], u[8];
  for (int i = 0; i < 4; i++) {
    t[2 * i] = _mm256_unpacklo_epi32(r[2 * i], r[2 * i + 1]);
    t[2 * i + 1] = _mm256_unpackhi_epi32(r[2 * i], r[2 * i + 1]);
  }
  for (int h = 0; h < 2; h++) {  // rows 0-3 (h = 0) and 4-7 (h = 1)
    const __m256i* a = t + 4 * h;
    u[4 * h + 0] = _mm256_unpacklo_epi64(a[0], a[2]);
    u[4 * h + 1] = _mm256_unpackhi_epi64(a[0], a[2]);
    u[4 * h + 2] = _mm256_unpacklo_epi64(a[1], a[3]);
    u[4 * h + 3] = _mm256_unpackhi_epi64(a[1], a[3]);
  }
  for (int g = 0; g < 4; g++) {
    out[g] = _mm256_permute2x128_si256(u[g], u[g + 4], 0x20);
    out[g + 4] = _mm256_permute2x128_si256(u[g], u[g + 4], 0x31);
  }
}

/** Block b of a row as 32 unsigned bytes in element order: q8_0 as q + 128, q4_0 as the nibble q. */
inline __m256i blockBytes(DType dtype, const uint8_t* block) {
  if (dtype == DType::Q8_0) {
    return _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(block + 2)), _mm256_set1_epi8(static_cast<char>(0x80)));
  }
  const __m128i qs = _mm_loadu_si128(reinterpret_cast<const __m128i*>(block + 2));
  const __m128i low = _mm_set1_epi8(0x0f);
  return _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(qs, 4), low), _mm_and_si128(qs, low));
}

void packTileAvx512(DType dtype, const uint8_t* firstRow, size_t rowBytes, int numRows, int numBlocks, uint8_t* packed) {
  const int blockBytesStored = dtype == DType::Q8_0 ? kQ8_0BlockBytes : kQ4_0BlockBytes;
  for (int b = 0; b < numBlocks; b++) {
    uint8_t* out = packed + static_cast<size_t>(b) * kTileBlockBytes;
    float* scales = reinterpret_cast<float*>(out + 16 * 32);
    __m256i rows[16], columns[2][8];
    for (int r = 0; r < 16; r++) {
      if (r < numRows) {
        const uint8_t* block = firstRow + r * rowBytes + static_cast<size_t>(b) * blockBytesStored;
        rows[r] = blockBytes(dtype, block);
        scales[r] = halfToFloat(loadU16(block));
      } else {
        rows[r] = _mm256_setzero_si256();
        scales[r] = 0.0f;
      }
    }
    transposeEight(rows, columns[0]);
    transposeEight(rows + 8, columns[1]);
    for (int g = 0; g < 8; g++) {
      const __m512i lanes = _mm512_inserti64x4(_mm512_castsi256_si512(columns[0][g]), columns[1][g], 1);
      _mm512_storeu_si512(out + 64 * g, lanes);
    }
  }
}

template <int kTokens>
void tilePass(int32_t bias, const uint8_t* packed, int numBlocks, const QuantizedRow* tokens, __m512* leaves) {
  const size_t stride = static_cast<size_t>(numBlocks) + 32;
  for (int b = 0; b < numBlocks; b++) {
    const uint8_t* block = packed + static_cast<size_t>(b) * kTileBlockBytes;
    __m512i w[8];
    for (int g = 0; g < 8; g++) w[g] = _mm512_loadu_si512(block + 64 * g);
    const __m512 wd = _mm512_loadu_ps(reinterpret_cast<const float*>(block + 16 * 32));
    for (int j = 0; j < kTokens; j++) {
      const QuantizedRow& x = tokens[j];
      // The unsigned weights over-count by bias·Σx; start the exact sum below zero by that much.
      __m512i acc = _mm512_set1_epi32(-bias * (x.sums16[2 * b] + x.sums16[2 * b + 1]));
      const int8_t* xq = x.q + 32 * b;
      for (int g = 0; g < 8; g++) {
        int32_t four;
        std::memcpy(&four, xq + 4 * g, 4);
        acc = _mm512_dpbusd_epi32(acc, w[g], _mm512_set1_epi32(four));
      }
      const __m512 scale = _mm512_mul_ps(wd, _mm512_set1_ps(x.d[b]));
      leaves[j * stride + b] = _mm512_mul_ps(_mm512_cvtepi32_ps(acc), scale);
    }
  }
}

void tileMatmulAvx512(DType dtype, const uint8_t* packed, int numBlocks, const QuantizedRow* tokens, int numTokens,
                      const TreePlan& plan, float* scratch, float* out, int64_t outStride, int numRows) {
  const int32_t bias = dtype == DType::Q8_0 ? 128 : 8;
  __m512* leaves = reinterpret_cast<__m512*>(scratch);
  const size_t stride = static_cast<size_t>(numBlocks) + 32;
  const __mmask16 valid = static_cast<__mmask16>((1u << numRows) - 1);
  for (int t = 0; t < numTokens; t += kTileTokens) {
    const int count = numTokens - t < kTileTokens ? numTokens - t : kTileTokens;
    switch (count) {
      case 4: tilePass<4>(bias, packed, numBlocks, tokens + t, leaves); break;
      case 3: tilePass<3>(bias, packed, numBlocks, tokens + t, leaves); break;
      case 2: tilePass<2>(bias, packed, numBlocks, tokens + t, leaves); break;
      default: tilePass<1>(bias, packed, numBlocks, tokens + t, leaves); break;
    }
    for (int j = 0; j < count; j++) {
      _mm512_mask_storeu_ps(out + (t + j) * outStride, valid, reduceTile(leaves + j * stride, plan));
    }
  }
}
#endif

}  // namespace

#if defined(TESSERA_AVX512)
void (*const packTile)(DType, const uint8_t*, size_t, int, int, uint8_t*) = packTileAvx512;
void (*const tileMatmul)(DType, const uint8_t*, int, const QuantizedRow*, int, const TreePlan&, float*, float*, int64_t,
                         int) = tileMatmulAvx512;
#else
void (*const packTile)(DType, const uint8_t*, size_t, int, int, uint8_t*) = nullptr;
void (*const tileMatmul)(DType, const uint8_t*, int, const QuantizedRow*, int, const TreePlan&, float*, float*, int64_t,
                         int) = nullptr;
#endif

}  // namespace TESSERA_ISA_NS
}  // namespace tessera
