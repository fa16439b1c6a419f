/** Backend.gatherRows on the host: the CPU backends' implementation, and the fallback of callers. */
import { check } from '../core/errors.js';

/** Rows `rows` of x [numRows, rowSize] → [rows.length, rowSize]. */
export function gatherRowsOnHost(x: Float32Array, rows: ArrayLike<number>, rowSize: number): Float32Array {
  const numRows = rowSize > 0 ? x.length / rowSize : 0;
  const out = new Float32Array(rows.length * rowSize);
  for (let i = 0; i < rows.length; i++) {
    const row = rows[i];
    check(Number.isInteger(row) && row >= 0 && row < numRows, 'TESSERA_ERR_INVALID_ARGUMENT', `row ${row} is outside the ${numRows} rows`);
    out.set(x.subarray(row * rowSize, (row + 1) * rowSize), i * rowSize);
  }
  return out;
}
