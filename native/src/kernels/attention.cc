// Queries attending over a sequence's paged cache: positions in order, one KV
// block at a time, online softmax. All queries that share a KV head run
// together, so each key block is transposed (lanes = keys) once for all of
// them. The arithmetic of one query never depends on the others, so prefill,
// chunked prefill and decode give the same bits, and so does any split over
// threads. The cache holds float32 or IEEE half bits (the kernel is a
// template on that element type, so the f32 path has no per-element test);
// halves are widened exactly as they are loaded and everything after is the
// f32 arithmetic. The fixed order, per query and block:
//   s_j  = ((p0 + p1) + (p2 + p3)) · scale, p_k = fma chain over dims d ≡ k (mod 4)
//   m'   = max(m, max_j s_j);  r = exp(m - m') (0 for the first block)
//   e_j  = exp(s_j - m');  sum = sum · r + Σ_j e_j (pairwise over 16 lanes, chunks in order)
//   acc  = acc · r, then acc = fma(e_j, v_j, acc) for j in order
//   out  = acc / sum
#include "kernel-functions.h"
#include "exp.h"
#include "tree-vector.h"
#include <cmath>

namespace tessera {
namespace TESSERA_ISA_NS {
namespace {

constexpr int kLanes = 16;
// Blocks of one KV head asked for ahead of the one computing.
constexpr int kPrefetchBlocks = 4;

/** A cached element as float: itself, or a half widened exactly. */
inline float widen(float x) { return x; }
inline float widen(uint16_t h) {
#if defined(TESSERA_AVX2) || defined(TESSERA_AVX512)
  return _cvtsh_ss(h);
#else
  return halfBitsToFloat(h);
#endif
}

#if defined(TESSERA_AVX512)
/** 16 cached elements (lanes outside `lanes` zero) as floats. */
inline __m512 loadKv(const float* p, __mmask16 lanes) { return _mm512_maskz_loadu_ps(lanes, p); }
inline __m512 loadKv(const uint16_t* p, __mmask16 lanes) { return _mm512_cvtph_ps(_mm256_maskz_loadu_epi16(lanes, p)); }
#endif

/** Keys [count ≤ 16] at stride `rowStride` → kt[d·16 + j] as floats, zero-padded. */
template <typename T>
void transposeKeys(const T* keys, int count, int rowStride, int headDim, float* kt) {
#if defined(TESSERA_AVX512)
  for (int d = 0; d < headDim; d += 16) {
    const __mmask16 dims = static_cast<__mmask16>(headDim - d >= 16 ? 0xffff : (1u << (headDim - d)) - 1);
    __m512 rows[16], columns[16];
    for (int j = 0; j < 16; j++) {
      rows[j] = j < count ? loadKv(keys + static_cast<size_t>(j) * rowStride + d, dims) : _mm512_setzero_ps();
    }
    transposeSixteen(rows, columns);
    for (int i = 0; i < 16 && d + i < headDim; i++) _mm512_storeu_ps(kt + (d + i) * kLanes, columns[i]);
  }
#else
  for (int d = 0; d < headDim; d++) {
    for (int j = 0; j < kLanes; j++) kt[d * kLanes + j] = j < count ? widen(keys[static_cast<size_t>(j) * rowStride + d]) : 0.0f;
  }
#endif
}

/** Scores of one query against 16 transposed keys; lanes ≥ count are -inf. */
[[maybe_unused]] inline void scoreChunk(const float* q, const float* kt, int headDim, float scale, int count, float* s) {
  float partial[4][kLanes] = {};
  for (int d = 0; d < headDim; d++) {
    float* p = partial[d % 4];
    const float qd = q[d];
    for (int j = 0; j < kLanes; j++) p[j] = std::fma(qd, kt[d * kLanes + j], p[j]);
  }
  for (int j = 0; j < kLanes; j++) {
    const float dot = (partial[0][j] + partial[1][j]) + (partial[2][j] + partial[3][j]);
    s[j] = j < count ? dot * scale : -__builtin_inff();
  }
}

[[maybe_unused]] inline float pairwiseSum16(const float* v) {
  float t[8];
  for (int i = 0; i < 8; i++) t[i] = v[2 * i] + v[2 * i + 1];
  for (int i = 0; i < 4; i++) t[i] = t[2 * i] + t[2 * i + 1];
  return (t[0] + t[1]) + (t[2] + t[3]);
}

struct QueryState {
  float max;
  float sum;
  float* acc;  // [headDim]
};

#if defined(TESSERA_AVX512)
inline float pairwiseSum16(__m512 v) {
  v = _mm512_add_ps(_mm512_shuffle_ps(v, v, _MM_SHUFFLE(2, 0, 2, 0)), _mm512_shuffle_ps(v, v, _MM_SHUFFLE(3, 1, 3, 1)));
  v = _mm512_add_ps(v, _mm512_shuffle_ps(v, v, _MM_SHUFFLE(2, 3, 0, 1)));
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(2, 3, 0, 1)));
  v = _mm512_add_ps(v, _mm512_shuffle_f32x4(v, v, _MM_SHUFFLE(1, 0, 3, 2)));
  return _mm512_cvtss_f32(v);
}

/**
 * acc = acc · rescale, then acc = fma(e_j, v_j, acc) for j in order, over
 * dims [d, d + 16·kChunks) of kQueries queries: kChunks·kQueries independent
 * chains per value row, so the FMA latency hides behind the others.
 */
template <int kQueries, int kChunks, typename T>
void accumulateValues(QueryState* const* states, const float* rescale, const int* counts, int most, const float* scores,
                      int scoreStride, const T* values, int rowStride, int headDim, int d) {
  __mmask16 dims[kChunks];
  __m512 acc[kQueries][kChunks];
  for (int c = 0; c < kChunks; c++) {
    const int left = headDim - d - 16 * c;
    dims[c] = static_cast<__mmask16>(left >= 16 ? 0xffff : (1u << left) - 1);
    for (int i = 0; i < kQueries; i++) {
      acc[i][c] = _mm512_mul_ps(_mm512_maskz_loadu_ps(dims[c], states[i]->acc + d + 16 * c), _mm512_set1_ps(rescale[i]));
    }
  }
  for (int j = 0; j < most; j++) {
    __m512 v[kChunks];
    for (int c = 0; c < kChunks; c++) v[c] = loadKv(values + static_cast<size_t>(j) * rowStride + d + 16 * c, dims[c]);
    for (int i = 0; i < kQueries; i++) {
      // Positions past a query's own count are skipped, not multiplied by zero.
      const __mmask16 take = static_cast<__mmask16>(-static_cast<int>(j < counts[i]));
      const __m512 e = _mm512_set1_ps(scores[i * scoreStride + j]);
      for (int c = 0; c < kChunks; c++) acc[i][c] = _mm512_mask3_fmadd_ps(e, v[c], acc[i][c], take);
    }
  }
  for (int c = 0; c < kChunks; c++) {
    for (int i = 0; i < kQueries; i++) _mm512_mask_storeu_ps(states[i]->acc + d + 16 * c, dims[c], acc[i][c]);
  }
}

/**
 * kQueries queries over one block at once: the same operations per query as
 * the portable attendBlock, interleaved so their latency chains overlap and
 * each key and value load serves every query. counts[i] ≥ 1.
 */
template <int kQueries, typename T>
void attendGroup(const float* const* queries, QueryState* const* states, const int* counts, const float* kt,
                 const T* values, int rowStride, int headDim, float scale, float* scores) {
  int most = 0;
  for (int i = 0; i < kQueries; i++) most = counts[i] > most ? counts[i] : most;
  const int chunks = (most + kLanes - 1) / kLanes;
  const int scoreStride = chunks * kLanes;
  float blockMax[kQueries];
  for (int i = 0; i < kQueries; i++) blockMax[i] = -__builtin_inff();
  for (int c = 0; c < chunks; c++) {
    __m512 p[kQueries][4];
    for (int i = 0; i < kQueries; i++) {
      for (int k = 0; k < 4; k++) p[i][k] = _mm512_setzero_ps();
    }
    const float* keys = kt + static_cast<size_t>(c) * headDim * kLanes;
    // Four dims a step, so every p[i][k] has a fixed register (p[i][d % 4]
    // with a variable d kept them in memory); the chains are the same.
    int d = 0;
    for (; d + 4 <= headDim; d += 4) {
      const __m512 k0 = _mm512_loadu_ps(keys + d * kLanes), k1 = _mm512_loadu_ps(keys + (d + 1) * kLanes);
      const __m512 k2 = _mm512_loadu_ps(keys + (d + 2) * kLanes), k3 = _mm512_loadu_ps(keys + (d + 3) * kLanes);
      for (int i = 0; i < kQueries; i++) {
        p[i][0] = _mm512_fmadd_ps(_mm512_set1_ps(queries[i][d]), k0, p[i][0]);
        p[i][1] = _mm512_fmadd_ps(_mm512_set1_ps(queries[i][d + 1]), k1, p[i][1]);
        p[i][2] = _mm512_fmadd_ps(_mm512_set1_ps(queries[i][d + 2]), k2, p[i][2]);
        p[i][3] = _mm512_fmadd_ps(_mm512_set1_ps(queries[i][d + 3]), k3, p[i][3]);
      }
    }
    for (int k = 0; d + k < headDim; k++) {
      const __m512 key = _mm512_loadu_ps(keys + (d + k) * kLanes);
      for (int i = 0; i < kQueries; i++) {
        const __m512 q = _mm512_set1_ps(queries[i][d + k]);
        if (k == 0) p[i][0] = _mm512_fmadd_ps(q, key, p[i][0]);
        if (k == 1) p[i][1] = _mm512_fmadd_ps(q, key, p[i][1]);
        if (k == 2) p[i][2] = _mm512_fmadd_ps(q, key, p[i][2]);
      }
    }
    for (int i = 0; i < kQueries; i++) {
      const __m512 dot = _mm512_add_ps(_mm512_add_ps(p[i][0], p[i][1]), _mm512_add_ps(p[i][2], p[i][3]));
      const int valid = counts[i] - c * kLanes;
      const __mmask16 lanes = static_cast<__mmask16>(valid >= 16 ? 0xffff : valid <= 0 ? 0 : (1u << valid) - 1);
      const __m512 s = _mm512_mask_mov_ps(_mm512_set1_ps(-__builtin_inff()), lanes, _mm512_mul_ps(dot, _mm512_set1_ps(scale)));
      _mm512_storeu_ps(scores + i * scoreStride + c * kLanes, s);
      const float m = _mm512_reduce_max_ps(s);
      blockMax[i] = m > blockMax[i] ? m : blockMax[i];
    }
  }
  float rescale[kQueries];
  for (int i = 0; i < kQueries; i++) {
    QueryState& state = *states[i];
    const float newMax = blockMax[i] > state.max ? blockMax[i] : state.max;
    rescale[i] = state.max == -__builtin_inff() ? 0.0f : expFloat(state.max - newMax);
    float blockSum = 0.0f;
    // A query's chunks past its own count are all -inf: their e are exact zeros and never read.
    for (int c = 0; c * kLanes < counts[i]; c++) {
      float* e = scores + i * scoreStride + c * kLanes;
      const __m512 weights = expFloat16(_mm512_sub_ps(_mm512_loadu_ps(e), _mm512_set1_ps(newMax)));
      _mm512_storeu_ps(e, weights);
      blockSum += pairwiseSum16(weights);
    }
    state.sum = state.sum * rescale[i] + blockSum;
    state.max = newMax;
  }
  for (int d = 0; d < headDim; d += 64) {
    switch ((headDim - d + 15) / 16) {
      case 1: accumulateValues<kQueries, 1>(states, rescale, counts, most, scores, scoreStride, values, rowStride, headDim, d); break;
      case 2: accumulateValues<kQueries, 2>(states, rescale, counts, most, scores, scoreStride, values, rowStride, headDim, d); break;
      case 3: accumulateValues<kQueries, 3>(states, rescale, counts, most, scores, scoreStride, values, rowStride, headDim, d); break;
      default: accumulateValues<kQueries, 4>(states, rescale, counts, most, scores, scoreStride, values, rowStride, headDim, d); break;
    }
  }
}

#else
/** One query over one block whose keys are transposed in kt (chunks of 16). */
template <typename T>
void attendBlock(const float* q, const float* kt, const T* values, int count, int rowStride, int headDim, float scale,
                 float* scores, QueryState& state) {
  const int chunks = (count + kLanes - 1) / kLanes;
  float blockMax = -__builtin_inff();
  for (int c = 0; c < chunks; c++) {
    float* s = scores + c * kLanes;
    scoreChunk(q, kt + static_cast<size_t>(c) * headDim * kLanes, headDim, scale, count - c * kLanes, s);
    for (int j = 0; j < kLanes; j++) blockMax = s[j] > blockMax ? s[j] : blockMax;
  }
  const float newMax = blockMax > state.max ? blockMax : state.max;
  const float rescale = state.max == -__builtin_inff() ? 0.0f : expFloat(state.max - newMax);
  float blockSum = 0.0f;
  for (int c = 0; c < chunks; c++) {
    float* e = scores + c * kLanes;
    for (int j = 0; j < kLanes; j++) e[j] = expFloat(e[j] - newMax);
    blockSum += pairwiseSum16(e);
  }
  state.sum = state.sum * rescale + blockSum;
  float* acc = state.acc;
  for (int d = 0; d < headDim; d++) acc[d] *= rescale;
  for (int j = 0; j < count; j++) {
    const float e = scores[j];
    const T* v = values + static_cast<size_t>(j) * rowStride;
    for (int d = 0; d < headDim; d++) acc[d] = std::fma(e, widen(v[d]), acc[d]);
  }
  state.max = newMax;
}
#endif

/**
 * Asks for one KV head's rows of a block while the block before it computes:
 * they are strided (one row per position) and a decode step reads every
 * sequence's cache once, mostly from memory.
 */
template <typename T>
void prefetchBlock(const T* keys, const T* values, int blockSize, int rowStride, int headDim) {
  constexpr int kLine = 64 / sizeof(T);  // elements per cache line
  for (int j = 0; j < blockSize; j++) {
    for (int d = 0; d < headDim; d += kLine) {
      __builtin_prefetch(keys + static_cast<size_t>(j) * rowStride + d);
      __builtin_prefetch(values + static_cast<size_t>(j) * rowStride + d);
    }
  }
}

template <typename T>
void attendKvHeadOf(const float* const* queries, const int32_t* lastPosition, float* const* out, int count,
                    const T* const* keyBlocks, const T* const* valueBlocks, int blockSize, int rowStride, int headDim,
                    float scale, float* scratch) {
  const int chunks = (blockSize + kLanes - 1) / kLanes;
  float* kt = scratch;                                          // [chunks][headDim][16]
  float* accs = kt + static_cast<size_t>(chunks) * headDim * kLanes;  // [count][headDim]
  float* scores = accs + static_cast<size_t>(count) * headDim;  // [4][chunks · 16]
  int lastOfAll = 0;
  for (int i = 0; i < count; i++) lastOfAll = lastPosition[i] > lastOfAll ? lastPosition[i] : lastOfAll;
  // Up to a few hundred queries; their max and sum live on the stack in batches of 64.
  for (int first = 0; first < count; first += 64) {
    const int batch = count - first < 64 ? count - first : 64;
    QueryState states[64];
    for (int i = 0; i < batch; i++) {
      states[i] = {-__builtin_inff(), 0.0f, accs + static_cast<size_t>(first + i) * headDim};
      for (int d = 0; d < headDim; d++) states[i].acc[d] = 0.0f;
    }
    for (int block = 0; block < kPrefetchBlocks && block * blockSize <= lastOfAll; block++) {
      prefetchBlock(keyBlocks[block], valueBlocks[block], blockSize, rowStride, headDim);
    }
    for (int block = 0; block * blockSize <= lastOfAll; block++) {
      const int start = block * blockSize;
      int needed = 0;  // positions of this block any query of the batch reads
      for (int i = 0; i < batch; i++) {
        const int reach = lastPosition[first + i] + 1 - start;
        needed = reach > needed ? reach : needed;
      }
      if (needed <= 0) continue;
      if (needed > blockSize) needed = blockSize;
      const int ahead = block + kPrefetchBlocks;
      if (ahead * blockSize <= lastOfAll) prefetchBlock(keyBlocks[ahead], valueBlocks[ahead], blockSize, rowStride, headDim);
      for (int c = 0; c * kLanes < needed; c++) {
        const int inChunk = needed - c * kLanes < kLanes ? needed - c * kLanes : kLanes;
        transposeKeys(keyBlocks[block] + static_cast<size_t>(c) * kLanes * rowStride, inChunk, rowStride, headDim,
                      kt + static_cast<size_t>(c) * headDim * kLanes);
      }
#if defined(TESSERA_AVX512)
      // Queries that reach into this block, four at a time.
      const float* group[4];
      QueryState* groupStates[4];
      int groupCounts[4];
      int members = 0;
      for (int i = 0; i <= batch; i++) {
        if (i < batch) {
          const int reach = lastPosition[first + i] + 1 - start;
          if (reach <= 0) continue;
          group[members] = queries[first + i];
          groupStates[members] = &states[i];
          groupCounts[members] = reach < blockSize ? reach : blockSize;
          members++;
        }
        if (members == 4 || (i == batch && members > 0)) {
          switch (members) {
            case 4: attendGroup<4>(group, groupStates, groupCounts, kt, valueBlocks[block], rowStride, headDim, scale, scores); break;
            case 3: attendGroup<3>(group, groupStates, groupCounts, kt, valueBlocks[block], rowStride, headDim, scale, scores); break;
            case 2: attendGroup<2>(group, groupStates, groupCounts, kt, valueBlocks[block], rowStride, headDim, scale, scores); break;
            default: attendGroup<1>(group, groupStates, groupCounts, kt, valueBlocks[block], rowStride, headDim, scale, scores); break;
          }
          members = 0;
        }
      }
#else
      for (int i = 0; i < batch; i++) {
        const int reach = lastPosition[first + i] + 1 - start;
        if (reach <= 0) continue;
        attendBlock(queries[first + i], kt, valueBlocks[block], reach < blockSize ? reach : blockSize, rowStride, headDim,
                    scale, scores, states[i]);
      }
#endif
    }
    for (int i = 0; i < batch; i++) {
      float* o = out[first + i];
      for (int d = 0; d < headDim; d++) o[d] = states[i].acc[d] / states[i].sum;
    }
  }
}

}  // namespace

void attendKvHead(const float* const* queries, const int32_t* lastPosition, float* const* out, int count,
                  const float* const* keyBlocks, const float* const* valueBlocks, int blockSize, int rowStride, int headDim,
                  float scale, float* scratch) {
  attendKvHeadOf(queries, lastPosition, out, count, keyBlocks, valueBlocks, blockSize, rowStride, headDim, scale, scratch);
}

void attendKvHeadF16(const float* const* queries, const int32_t* lastPosition, float* const* out, int count,
                     const uint16_t* const* keyBlocks, const uint16_t* const* valueBlocks, int blockSize, int rowStride,
                     int headDim, float scale, float* scratch) {
  attendKvHeadOf(queries, lastPosition, out, count, keyBlocks, valueBlocks, blockSize, rowStride, headDim, scale, scratch);
}

void floatsToHalves(const float* x, size_t n, uint16_t* out) {
  size_t i = 0;
#if defined(TESSERA_AVX512)
  for (; i + 16 <= n; i += 16) {
    const __m256i h = _mm512_cvtps_ph(_mm512_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + i), h);
  }
#elif defined(TESSERA_AVX2)
  for (; i + 8 <= n; i += 8) {
    const __m128i h = _mm256_cvtps_ph(_mm256_loadu_ps(x + i), _MM_FROUND_TO_NEAREST_INT);
    _mm_storeu_si128(reinterpret_cast<__m128i*>(out + i), h);
  }
#endif
  for (; i < n; i++) out[i] = floatToHalfBits(x[i]);
}

}  // namespace TESSERA_ISA_NS
}  // namespace tessera
