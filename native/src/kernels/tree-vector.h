// The canonical halving tree over leaves that are each a vector of 16 rows
// (lanes = rows): the same pairs as reduceLeaves, one vector add per pair.
#pragma once
#include <type_traits>

#include "isa.h"

namespace tessera {
namespace TESSERA_ISA_NS {
namespace {

#if defined(TESSERA_AVX512)
/**
 * A batch reads a tile from memory in its first pass of tokens and from
 * cache in the rest: the quantized tile kernels ask for the next tile (and
 * 4 KiB more) while the passes run, spreading that burst over them. Each pass
 * asks for its own share of every block's lines (pass p: lines p, p + passes,
 * ...), into L2 (T1) rather than L1, where they pushed out the lines the
 * later passes reread. 16-token q8_0 batches streaming from memory, 2 threads:
 * 364-390 GOP/s asking for every line in every pass into L1, 411-437 GOP/s
 * this way (same run). Decode is left to the hardware prefetcher: software
 * prefetch there measured no better.
 */
constexpr size_t kPrefetchBeyondTile = 4096;

/** Which lines of the next tile one pass asks for: `ahead` bytes on, every `step`-th line from `first`. */
struct PrefetchShare {
  size_t ahead;
  int first;
  int step;
};

/** Asks for this pass's share of the cache lines of [bytes + ahead, bytes + ahead + length). */
inline void prefetchLines(const uint8_t* bytes, size_t length, const PrefetchShare& share) {
  for (size_t line = 64 * static_cast<size_t>(share.first); line < length; line += 64 * static_cast<size_t>(share.step)) {
    _mm_prefetch(reinterpret_cast<const char*>(bytes + share.ahead + line), _MM_HINT_T1);
  }
}

/**
 * numTokens in passes of passTokens, except that a short remainder (under
 * half a pass) shares the last two passes evenly: 9 tokens go as 5 + 4, not
 * 8 + 1. A pass rereads the tile from cache whatever its size, so a 1-token
 * pass cost nearly what a full one does (9 tokens took as long as 16).
 */
struct TokenPasses {
  int numTokens;
  int passTokens;
  int count;
  /** Tokens of the last two passes when they split a short remainder evenly, else 0. */
  int shared;
  int start(int pass) const {
    if (shared > 0 && pass == count - 1) return (count - 2) * passTokens + (shared + 1) / 2;
    return pass * passTokens;
  }
  int size(int pass) const {
    if (shared > 0 && pass == count - 2) return (shared + 1) / 2;
    if (shared > 0 && pass == count - 1) return shared / 2;
    return numTokens - pass * passTokens < passTokens ? numTokens - pass * passTokens : passTokens;
  }
};

inline TokenPasses tokenPasses(int numTokens, int passTokens) {
  const int count = (numTokens + passTokens - 1) / passTokens;
  const int remainder = numTokens % passTokens;
  const bool share = count >= 2 && remainder > 0 && 2 * remainder < passTokens;
  return {numTokens, passTokens, count, share ? passTokens + remainder : 0};
}

/** f(std::integral_constant<int, count>()) for a runtime count in [1, kMax]. */
template <int kMax, typename F>
inline void withTokenCount(int count, F f) {
  if constexpr (kMax > 1) {
    if (count < kMax) return withTokenCount<kMax - 1>(count, f);
  }
  f(std::integral_constant<int, kMax>());
}

/**
 * A quantized tile's (tileBytes bytes) results for numTokens tokens, in the
 * passes of tokenPasses: pass(std::integral_constant<int, count>, first
 * token, its share of the next tile's lines, results) fills results[0,
 * count) (lanes = rows), stored for the tile's numRows rows.
 */
template <int kPassTokens, typename Pass>
inline void tileTokenPasses(size_t tileBytes, int numTokens, float* out, int64_t outStride, int numRows, Pass pass) {
  static_assert(kPassTokens <= kMaxTilePassTokens, "a pass takes at most kMaxTilePassTokens tokens");
  const __mmask16 valid = static_cast<__mmask16>((1u << numRows) - 1);
  const TokenPasses passes = tokenPasses(numTokens, kPassTokens);
  for (int p = 0; p < passes.count; p++) {
    const int t = passes.start(p);
    const int count = passes.size(p);
    __m512 results[kPassTokens];
    const PrefetchShare share{tileBytes + kPrefetchBeyondTile, p, passes.count};
    withTokenCount<kPassTokens>(count, [&](auto tokens) { pass(tokens, t, share, results); });
    for (int j = 0; j < count; j++) _mm512_mask_storeu_ps(out + (t + j) * outStride, valid, results[j]);
  }
}

/** leaves[0, plan.n) → their sums per lane; `leaves` (room for n + 1) is clobbered. */
inline __m512 reduceTile(__m512* leaves, const TreePlan& plan) {
  if (plan.width != plan.n) {
    // Branch-free: the 1-or-2 pattern is irregular, and a mispredict per node costs more than the add.
    // (A blend, not "+ 0": adding zero would turn a -0 leaf into +0.)
    for (int i = 0; i < plan.width; i++) {
      const int s = plan.start[i];
      const __mmask16 pair = static_cast<__mmask16>(-static_cast<int>(plan.count[i] == 2));
      leaves[i] = _mm512_mask_add_ps(leaves[s], pair, leaves[s], leaves[s + 1]);
    }
  }
  for (int width = plan.width; width > 1; width /= 2) {
    for (int i = 0; i < width / 2; i++) leaves[i] = _mm512_add_ps(leaves[2 * i], leaves[2 * i + 1]);
  }
  return leaves[0];
}

/**
 * The halving tree over leaves produced in order, folded as they come (level
 * 0, then a stack for the perfect part): the same pairs as reduceTile with no
 * buffer of leaves. leafAt(unit, values) writes unit's leaf for kTokens tokens.
 * With kFourNodes, nodes are folded four at a time in registers (a perfect
 * subtree of the perfect part), so the stack in memory sees a quarter of the
 * traffic: faster for the quantized kernels, slower for the float ones,
 * whose leaves already hold many registers (f16 batches: 128-136 → 109-124
 * GOP/s measured with it).
 */
template <int kTokens, bool kFourNodes = true, typename LeafAt>
inline void foldTree(const TreePlan& plan, LeafAt leafAt, __m512* results) {
  __m512 stack[kTokens][32];
  int depth = 0;
  int unit = 0;
  // Node `node` (one leaf, or two leaves added) → value.
  auto nodeValue = [&](int node, __m512* value) {
    leafAt(unit, value);
    if (plan.count[node] == 2) {
      __m512 second[kTokens];
      leafAt(unit + 1, second);
      for (int j = 0; j < kTokens; j++) value[j] = _mm512_add_ps(value[j], second[j]);
    }
    unit += plan.count[node];
  };
  // Pushes the value of stack entry `entry` (of `span` nodes), then pairs the entries that end with it.
  auto push = [&](const __m512* value, int entry) {
    for (int j = 0; j < kTokens; j++) stack[j][depth] = value[j];
    depth++;
    for (unsigned m = static_cast<unsigned>(entry) + 1; (m & 1u) == 0; m >>= 1) {
      depth--;
      for (int j = 0; j < kTokens; j++) stack[j][depth - 1] = _mm512_add_ps(stack[j][depth - 1], stack[j][depth]);
    }
  };
  if (kFourNodes && plan.width >= 4) {
    for (int group = 0; group < plan.width / 4; group++) {
      __m512 a[kTokens], b[kTokens], c[kTokens];
      nodeValue(4 * group, a);
      nodeValue(4 * group + 1, b);
      for (int j = 0; j < kTokens; j++) a[j] = _mm512_add_ps(a[j], b[j]);
      nodeValue(4 * group + 2, b);
      nodeValue(4 * group + 3, c);
      for (int j = 0; j < kTokens; j++) a[j] = _mm512_add_ps(a[j], _mm512_add_ps(b[j], c[j]));
      push(a, group);
    }
  } else {
    for (int node = 0; node < plan.width; node++) {
      __m512 value[kTokens];
      nodeValue(node, value);
      push(value, node);
    }
  }
  for (int j = 0; j < kTokens; j++) results[j] = stack[j][0];
}

/** 16 rows of 16 floats → 16 columns (out[i] lane r = rows[r] lane i). */
inline void transposeSixteen(const __m512* rows, __m512* out) {
  __m512 t[16], u[16], v[16];
  for (int i = 0; i < 8; i++) {
    t[2 * i] = _mm512_unpacklo_ps(rows[2 * i], rows[2 * i + 1]);
    t[2 * i + 1] = _mm512_unpackhi_ps(rows[2 * i], rows[2 * i + 1]);
  }
  for (int i = 0; i < 4; i++) {
    const __m512d a0 = _mm512_castps_pd(t[4 * i]), a1 = _mm512_castps_pd(t[4 * i + 1]);
    const __m512d b0 = _mm512_castps_pd(t[4 * i + 2]), b1 = _mm512_castps_pd(t[4 * i + 3]);
    u[4 * i] = _mm512_castpd_ps(_mm512_unpacklo_pd(a0, b0));
    u[4 * i + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a0, b0));
    u[4 * i + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(a1, b1));
    u[4 * i + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(a1, b1));
  }
  // u[4i + k] holds, per 128-bit quarter q, element 4q + k of rows 4i..4i+3.
  for (int i = 0; i < 2; i++) {
    for (int k = 0; k < 4; k++) {
      const __m512 a = u[8 * i + k], b = u[8 * i + 4 + k];
      v[8 * i + k] = _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(2, 0, 2, 0));      // quarters 0, 2 of rows 8i..8i+7
      v[8 * i + 4 + k] = _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 1, 3, 1));  // quarters 1, 3
    }
  }
  for (int k = 0; k < 4; k++) {
    for (int h = 0; h < 2; h++) {
      const __m512 a = v[4 * h + k], b = v[8 + 4 * h + k];
      out[4 * h + k] = _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(2, 0, 2, 0));
      out[8 + 4 * h + k] = _mm512_shuffle_f32x4(a, b, _MM_SHUFFLE(3, 1, 3, 1));
    }
  }
}
#endif

}  // namespace
}  // namespace TESSERA_ISA_NS
}  // namespace tessera
