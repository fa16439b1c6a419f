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
  /** [TOKEN_TILE, numLeaves] leaf sums of up to TOKEN_TILE tokens against one row. */
  const leaves = new Float32Array(TOKEN_TILE * numLeaves);
  /** [numTokens, M] */
  const out = new Float32Array(numTokens * M);
  for (let tileStart = 0; tileStart < numTokens; tileStart += TOKEN_TILE) {
    const tile = Math.min(TOKEN_TILE, numTokens - tileStart);
    for (let m = 0; m < M; m++) {
      if (tile === TOKEN_TILE) leafSumsTile(x, tileStart * K, w, m * K, K, leafSize, leaves);
      else for (let t = 0; t < tile; t++) leafSumsOne(x, (tileStart + t) * K, w, m * K, K, leafSize, leaves, t * numLeaves);
      for (let t = 0; t < tile; t++) {
        out[(tileStart + t) * M + m] = reduceLeaves(leaves, t * numLeaves, (t + 1) * numLeaves);
      }
    }
  }
  return out;
}

/**
 * Tokens per pass over a weight row. Each token keeps its own float64 sum in
 * the same left-to-right order, so tiling changes speed, never bits.
 */
const TOKEN_TILE = 4;

/** Leaf sums of one token against one weight row, into leaves[at..]. */
function leafSumsOne(
  x: Float32Array, xRow: number, w: Float32Array, wRow: number, K: number, leafSize: number, leaves: Float32Array, at: number,
): void {
  for (let start = 0, leaf = at; start < K; start += leafSize, leaf++) {
    const end = Math.min(start + leafSize, K);
    let sum = 0;
    for (let k = start; k < end; k++) sum += x[xRow + k] * w[wRow + k];
    leaves[leaf] = sum;
  }
}

/** Leaf sums of TOKEN_TILE consecutive tokens against one weight row; leaves is [TOKEN_TILE, numLeaves]. */
function leafSumsTile(
  x: Float32Array, xRow: number, w: Float32Array, wRow: number, K: number, leafSize: number, leaves: Float32Array,
): void {
  const numLeaves = Math.ceil(K / leafSize);
  for (let start = 0, leaf = 0; start < K; start += leafSize, leaf++) {
    const end = Math.min(start + leafSize, K);
    let s0 = 0;
    let s1 = 0;
    let s2 = 0;
    let s3 = 0;
    for (let k = start; k < end; k++) {
      const weight = w[wRow + k];
      const i = xRow + k;
      s0 += x[i] * weight;
      s1 += x[i + K] * weight;
      s2 += x[i + 2 * K] * weight;
      s3 += x[i + 3 * K] * weight;
    }
    leaves[leaf] = s0;
    leaves[numLeaves + leaf] = s1;
    leaves[2 * numLeaves + leaf] = s2;
    leaves[3 * numLeaves + leaf] = s3;
  }
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
