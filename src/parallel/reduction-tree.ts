/**
 * The cross-rank end of the canonical reduction tree (DESIGN §4): the
 * partials of members [lo, hi) combine as sum([lo, mid)) + sum([mid, hi))
 * with mid = lo + floor((hi - lo) / 2), every partial rounded to float32 —
 * for 2 members fround(p0 + p1), for 4 fround(fround(p0 + p1) + fround(p2 + p3)).
 * Float addition is commutative bit for bit, so which operand a loop reads
 * first does not matter; which pairs are added, and when, does.
 */

/** First element of chunk i when `length` elements are cut into `count` near-equal chunks. */
export function chunkStart(length: number, count: number, i: number): number {
  return Math.floor((length * i) / count);
}

/** Elementwise canonical-tree sum of parts [lo, hi), each partial rounded to float32, in a new array. */
export function treeSum(parts: readonly Float32Array[], lo: number, hi: number): Float32Array {
  if (hi - lo === 1) return parts[lo];
  const mid = lo + Math.floor((hi - lo) / 2);
  const left = treeSum(parts, lo, mid);
  const right = treeSum(parts, mid, hi);
  /** A Float32Array store rounds each sum to float32, as Math.fround would. */
  const out = new Float32Array(left.length);
  for (let i = 0; i < out.length; i++) out[i] = left[i] + right[i];
  return out;
}

/**
 * The same tree sum without allocating: each inner node is written over
 * one of its children's buffers, so parts[keep] ends up holding the whole
 * sum and is returned. The other parts are overwritten (callers pass
 * scratch there). Parts must not share memory with each other.
 */
export function treeSumInPlace(parts: readonly Float32Array[], lo: number, hi: number, keep: number): Float32Array {
  if (hi - lo === 1) return parts[lo];
  const mid = lo + Math.floor((hi - lo) / 2);
  const left = treeSumInPlace(parts, lo, mid, keep);
  const right = treeSumInPlace(parts, mid, hi, keep);
  // The node lands in the child on keep's side, so keep's buffer carries the root.
  const out = keep >= mid && keep < hi ? right : left;
  addInto(out, left, right);
  return out;
}

/**
 * out[i] = fround(left[i] + right[i]); out may be left or right (each
 * statement reads element i before writing it). Unrolled by 8: V8 then runs
 * it about twice as fast as the one-line loop, which is most of the
 * all-reduce's own CPU time.
 */
function addInto(out: Float32Array, left: Float32Array, right: Float32Array): void {
  const length = out.length;
  let i = 0;
  for (; i + 8 <= length; i += 8) {
    out[i] = left[i] + right[i];
    out[i + 1] = left[i + 1] + right[i + 1];
    out[i + 2] = left[i + 2] + right[i + 2];
    out[i + 3] = left[i + 3] + right[i + 3];
    out[i + 4] = left[i + 4] + right[i + 4];
    out[i + 5] = left[i + 5] + right[i + 5];
    out[i + 6] = left[i + 6] + right[i + 6];
    out[i + 7] = left[i + 7] + right[i + 7];
  }
  for (; i < length; i++) out[i] = left[i] + right[i];
}
