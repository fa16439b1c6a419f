/** The argument checks every backend makes on its pointwise ops (the same codes and messages everywhere). */
import { check } from '../core/errors.js';
import type { RopeArgs } from './backend.js';

/** rope: an even ropeDims within the head, enough inverse frequencies, x of [tokens, heads, headDim]. */
export function checkRopeArgs(args: RopeArgs): void {
  const { x, positions, numHeads, headDim, ropeDims, inverseFrequencies } = args;
  check(
    ropeDims % 2 === 0 && ropeDims <= headDim && inverseFrequencies.length >= ropeDims / 2,
    'TESSERA_ERR_INVALID_ARGUMENT',
    `rope needs an even ropeDims ≤ headDim (${ropeDims}, ${headDim}) and ${ropeDims / 2} inverse frequencies`,
  );
  check(
    x.length === positions.length * numHeads * headDim,
    'TESSERA_ERR_INVALID_ARGUMENT',
    `rope input has ${x.length} values, expected ${positions.length} tokens × ${numHeads} heads × ${headDim}`,
  );
}

/** addBias: x holds numRows rows of the bias's dim. */
export function checkBiasRows(x: Float32Array, numRows: number, dim: number): void {
  check(x.length === numRows * dim, 'TESSERA_ERR_INVALID_ARGUMENT', `addBias input has ${x.length} values, expected ${numRows} rows of ${dim}`);
}
