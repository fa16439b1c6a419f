/** The check both backends make on a caller's output buffer (ops' optional `out`). */
import { check } from '../core/errors.js';

export function checkOutLength(out: Float32Array, length: number): void {
  check(out.length === length, 'TESSERA_ERR_INVALID_ARGUMENT', `the output buffer holds ${out.length} values, the result ${length}`);
}
