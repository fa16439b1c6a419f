/**
 * Matrix product in the canonical reduction order of backend.ts: each row is
 * cut into leaves of `leafSize` elements (the last one may be short), each
 * leaf summed left to right in float64 and rounded to float32, then the leaf
 * sums combined by the halving tree with every partial rounded to float32.
 * Products of two float32 values are exact in float64, so the only roundings
 * are the float64 running sum and the float32 stores.
 */
import { check } from '../../core/errors.js';

/**
 * x [numTokens, K] · Wᵀ with w [M, K] → [numTokens, M].
 */
export function matmulCanonical(
  x: Float32Array,
  w: Float32Array,
  numTokens: number,
  M: number,
  K: number,
  leafSize: number,
): Float32Array {
  check(
    x.length === numTokens * K,
    'TESSERA_ERR_INVALID_ARGUMENT',
    `matmul input has ${x.length} values but ${numTokens} tokens of ${K} features need ${numTokens * K}`,
  );
  const numLeaves = Math.ceil(K / leafSize);
  /** [numLeaves] leaf sums of one (token, row) pair. */
  const leaves = new Float32Array(numLeaves);
  /** [numTokens, M] */
  const out = new Float32Array(numTokens * M);
  // Rows outermost so each weight row is read once and reused for every token.
  for (let m = 0; m < M; m++) {
    const wRow = m * K;
    for (let t = 0; t < numTokens; t++) {
      const xRow = t * K;
      for (let leaf = 0; leaf < numLeaves; leaf++) {
        const start = leaf * leafSize;
        const end = Math.min(start + leafSize, K);
        let sum = 0;
        for (let k = start; k < end; k++) sum += x[xRow + k] * w[wRow + k];
        leaves[leaf] = sum;
      }
      out[t * M + m] = reduceLeaves(leaves, 0, numLeaves);
    }
  }
  return out;
}

/**
 * Sum of leaves [lo, hi) by the canonical halving tree, every partial rounded
 * to float32. Exported so shards and tests can finish the same tree.
 */
export function reduceLeaves(leaves: ArrayLike<number>, lo: number, hi: number): number {
  const count = hi - lo;
  if (count <= 0) return 0;
  if (count === 1) return Math.fround(leaves[lo]);
  const mid = lo + Math.floor(count / 2);
  return Math.fround(reduceLeaves(leaves, lo, mid) + reduceLeaves(leaves, mid, hi));
}
