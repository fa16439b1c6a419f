/** The check both backends make on a caller's output buffer (ops' optional `out`). */
import { check } from '../core/errors.js';

export function checkOutLength(out: Float32Array, length: number): void {
  check(out.length === length, 'TESSERA_ERR_INVALID_ARGUMENT', `the output buffer holds ${out.length} values, the result ${length}`);
}

/** matmulMany's weights (at least one) and its optional outs (one per weight). */
export function checkMatmulMany(weightCount: number, outs: readonly Float32Array[] | undefined): void {
  check(weightCount > 0, 'TESSERA_ERR_INVALID_ARGUMENT', 'matmulMany needs at least one weight');
  check(!outs || outs.length === weightCount, 'TESSERA_ERR_INVALID_ARGUMENT', `matmulMany got ${outs?.length} outs for ${weightCount} weights`);
}
