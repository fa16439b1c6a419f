/**
 * Ranking tokens by score without sorting the whole vocabulary: partial
 * top-k selection with a bounded heap, and the probability-mass prefix that
 * nucleus (top-p) sampling keeps. Ties always go to the lower token id, so
 * every ranking is deterministic.
 */

type Scores = Float32Array | Float64Array;

/** True when token a ranks above token b. */
function ranksAbove(scores: Scores, a: number, b: number): boolean {
  return scores[a] > scores[b] || (scores[a] === scores[b] && a < b);
}

/** Ids sorted best first. */
export function sortRanked(scores: Scores, ids: Int32Array): Int32Array {
  return ids.sort((a, b) => (scores[b] - scores[a]) || (a - b));
}

/**
 * The k best ids, best first, in O(V log k): a min-heap whose root is the
 * worst of the k kept so far.
 */
export function topIds(scores: Scores, k: number): Int32Array {
  const count = Math.max(0, Math.min(k, scores.length));
  const heap = new Int32Array(count);
  let size = 0;
  for (let id = 0; id < scores.length; id++) {
    if (Number.isNaN(scores[id])) continue;
    if (size < count) {
      heap[size++] = id;
      siftUp(scores, heap, size - 1);
    } else if (count > 0 && ranksAbove(scores, id, heap[0])) {
      heap[0] = id;
      siftDown(scores, heap, size);
    }
  }
  return sortRanked(scores, heap.subarray(0, size));
}

function siftUp(scores: Scores, heap: Int32Array, index: number): void {
  let i = index;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (!ranksAbove(scores, heap[parent], heap[i])) break;
    [heap[parent], heap[i]] = [heap[i], heap[parent]];
    i = parent;
  }
}

function siftDown(scores: Scores, heap: Int32Array, size: number): void {
  let i = 0;
  for (;;) {
    const left = 2 * i + 1;
    const right = left + 1;
    let worst = i;
    if (left < size && ranksAbove(scores, heap[worst], heap[left])) worst = left;
    if (right < size && ranksAbove(scores, heap[worst], heap[right])) worst = right;
    if (worst === i) return;
    [heap[worst], heap[i]] = [heap[i], heap[worst]];
    i = worst;
  }
}

/** Index of the best score; ties go to the lowest id. */
export function argmax(scores: Scores): number {
  let best = 0;
  for (let id = 1; id < scores.length; id++) if (scores[id] > scores[best] || Number.isNaN(scores[best])) best = id;
  return best;
}

/** Largest score (−Infinity for an empty or all-NaN array). */
export function maxScore(scores: Scores): number {
  let max = -Infinity;
  for (let id = 0; id < scores.length; id++) if (scores[id] > max) max = scores[id];
  return max;
}

/**
 * The nucleus: the shortest best-first prefix whose softmax mass reaches
 * topP. `ranked` (best first) restricts and renormalizes the distribution, as
 * after top-k; without it the whole vocabulary counts, and only the tokens
 * above a falling probability threshold get sorted.
 */
export function nucleus(scores: Scores, ranked: Int32Array | undefined, topP: number): Int32Array {
  const max = maxScore(scores);
  if (ranked !== undefined) return massPrefix(scores, ranked, max, sumWeights(scores, ranked, max), topP);
  let total = 0;
  for (let id = 0; id < scores.length; id++) total += Math.exp(scores[id] - max);
  // Candidates with weight ≥ e^logThreshold are exactly the top of the full ranking.
  for (let logThreshold = -8; ; logThreshold *= 2) {
    const candidates = idsAtLeast(scores, max + logThreshold);
    const mass = sumWeights(scores, candidates, max);
    if (mass >= topP * total || candidates.length === scores.length || logThreshold < -2000) {
      return massPrefix(scores, sortRanked(scores, candidates), max, total, topP);
    }
  }
}

/** Ids whose score is at least `cutoff`, in id order. */
export function idsAtLeast(scores: Scores, cutoff: number, among?: Int32Array): Int32Array {
  const kept: number[] = [];
  if (among !== undefined) {
    for (const id of among) if (scores[id] >= cutoff) kept.push(id);
  } else {
    for (let id = 0; id < scores.length; id++) if (scores[id] >= cutoff) kept.push(id);
  }
  return Int32Array.from(kept);
}

function sumWeights(scores: Scores, ids: Int32Array, max: number): number {
  let sum = 0;
  for (const id of ids) sum += Math.exp(scores[id] - max);
  return sum;
}

function massPrefix(scores: Scores, ranked: Int32Array, max: number, total: number, topP: number): Int32Array {
  const target = topP * total;
  let mass = 0;
  for (let i = 0; i < ranked.length; i++) {
    mass += Math.exp(scores[ranked[i]] - max);
    if (mass >= target) return ranked.subarray(0, i + 1);
  }
  return ranked;
}
