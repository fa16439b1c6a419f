// The canonical halving tree over leaf sums (backend.ts): [lo, hi) splits at
// lo + floor((hi - lo) / 2). Every node at depth d = floor(log2 n) covers one
// or two leaves, and above that depth the tree is perfect. So the sum is one
// pass that folds the two-leaf nodes (the plan says which), then rounds of
// adjacent pairs. Each partial is one float32 add, as the contract says; the
// vector path pairs exactly the same values.
#include "kernel-functions.h"
#include "tree-vector.h"

namespace tessera {
namespace TESSERA_ISA_NS {
namespace {

/** Level 0 on [first, width): node i → leaves[i]; in place (node i reads leaves at index >= i). */
inline void foldFirstLevel(float* leaves, const TreePlan& plan, int first) {
  for (int i = first; i < plan.width; i++) {
    const int s = plan.start[i];
    leaves[i] = plan.count[i] == 2 ? leaves[s] + leaves[s + 1] : leaves[s];
  }
}

inline float pairwise(float* v, int width) {
  for (; width > 1; width /= 2) {
    for (int i = 0; i < width / 2; i++) v[i] = v[2 * i] + v[2 * i + 1];
  }
  return v[0];
}

#if defined(TESSERA_AVX512)
/** Level 0 for nodes [0, 16·chunks): each 16 nodes read at most 32 leaves from their first start. */
inline int foldFirstLevelAvx512(float* leaves, const TreePlan& plan) {
  const int chunks = plan.width / 16;
  const __m512i one = _mm512_set1_epi32(1);
  for (int c = 0; c < chunks; c++) {
    const int base = plan.start[16 * c];
    const __m512i starts = _mm512_loadu_si512(plan.start + 16 * c);
    const __m512i first = _mm512_sub_epi32(starts, _mm512_set1_epi32(base));
    const __mmask16 pairs =
        _mm512_cmpeq_epi32_mask(_mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(plan.count + 16 * c))),
                                _mm512_set1_epi32(2));
    const __m512 low = _mm512_loadu_ps(leaves + base);
    const __m512 high = _mm512_loadu_ps(leaves + base + 16);
    const __m512 a = _mm512_permutex2var_ps(low, first, high);
    const __m512 b = _mm512_permutex2var_ps(low, _mm512_add_epi32(first, one), high);
    // Written after both loads; node 16c+j lands at index <= its leaves, so later chunks still read leaves.
    _mm512_storeu_ps(leaves + 16 * c, _mm512_mask_add_ps(a, pairs, a, b));
  }
  return chunks * 16;
}

/** Adjacent pairs of v[0, width) while width > 16; returns the width left. */
inline int pairwiseAvx512(float* v, int width) {
  const __m512i even = _mm512_setr_epi32(0, 2, 4, 6, 8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30);
  const __m512i odd = _mm512_add_epi32(even, _mm512_set1_epi32(1));
  for (; width > 16; width /= 2) {
    for (int i = 0; i < width / 2; i += 16) {
      const __m512 low = _mm512_loadu_ps(v + 2 * i);
      const __m512 high = _mm512_loadu_ps(v + 2 * i + 16);
      _mm512_storeu_ps(v + i, _mm512_add_ps(_mm512_permutex2var_ps(low, even, high), _mm512_permutex2var_ps(low, odd, high)));
    }
  }
  return width;
}

/** The pairwise tree over 16 values in one register: (0+1), (2+3), … then pairs of those. */
inline float pairwiseSixteen(__m512 v) {
  v = _mm512_add_ps(_mm512_shuffle_ps(v, v, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_ps(v, v, _MM_SHUFFLE(3, 1, 3, 1)));
  // each 128-bit quarter q now holds [q0+q1, q2+q3, same, same]
  v = _mm512_add_ps(v, _mm512_shuffle_ps(v, v, _MM_SHUFFLE(2, 3, 0, 1)));
  // lane 4q holds quarter q's sum
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(2, 3, 0, 1)));
  // lane 0: q0+q1, lane 8: q2+q3
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(1, 0, 3, 2)));
  return _mm512_cvtss_f32(v);
}
#endif

}  // namespace

float reduceLeaves(float* leaves, const TreePlan& plan) {
  if (plan.n <= 0) return 0.0f;
  int width = plan.width;
#if defined(TESSERA_AVX512)
  if (plan.width != plan.n) foldFirstLevel(leaves, plan, foldFirstLevelAvx512(leaves, plan));
  width = pairwiseAvx512(leaves, width);
  if (width == 16) return pairwiseSixteen(_mm512_loadu_ps(leaves));
#else
  if (plan.width != plan.n) foldFirstLevel(leaves, plan, 0);
#endif
  return pairwise(leaves, width);
}

void reduceLeavesRows(float* leaves, size_t stride, int rows, const TreePlan& plan, float* scratch, float* out) {
#if defined(TESSERA_AVX512)
  // Transpose to lanes = rows, then one vector add per pair of the tree.
  __m512* columns = reinterpret_cast<__m512*>(scratch);
  for (int group = 0; group * 16 < plan.n; group++) {
    __m512 block[16];
    for (int r = 0; r < 16; r++) block[r] = r < rows ? _mm512_loadu_ps(leaves + r * stride + 16 * group) : _mm512_setzero_ps();
    transposeSixteen(block, columns + 16 * group);
  }
  _mm512_mask_storeu_ps(out, static_cast<__mmask16>((1u << rows) - 1), reduceTile(columns, plan));
#else
  (void)scratch;
  for (int r = 0; r < rows; r++) out[r] = reduceLeaves(leaves + r * stride, plan);
#endif
}

}  // namespace TESSERA_ISA_NS
}  // namespace tessera
