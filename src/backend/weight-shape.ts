/** The shape checks every backend makes when it takes a weight's stored bytes. */
import { byteSize, DTYPE_LAYOUTS, type DType } from '../core/dtype.js';
import { check } from '../core/errors.js';

/** Rows and columns of a weight shape, after checking it suits the dtype; byteLength when given must match. */
export function checkWeightShape(dtype: DType, shape: readonly number[], byteLength?: number): { rows: number; cols: number } {
  check(shape.length > 0, 'TESSERA_ERR_INVALID_ARGUMENT', 'a weight needs at least one dimension');
  check(
    shape.every((d) => Number.isInteger(d) && d > 0),
    'TESSERA_ERR_BAD_FORMAT',
    `weight shape [${shape.join(', ')}] has a dimension that is not a positive integer; the model file is corrupt`,
  );
  const cols = shape[shape.length - 1];
  const blockSize = DTYPE_LAYOUTS[dtype].blockSize;
  check(
    cols % blockSize === 0,
    'TESSERA_ERR_BAD_FORMAT',
    `a ${dtype} weight needs rows of whole ${blockSize}-element blocks but shape [${shape.join(', ')}] has rows of ${cols}`,
  );
  const rows = shape.slice(0, -1).reduce((a, b) => a * b, 1);
  if (byteLength !== undefined) {
    const expected = byteSize(dtype, rows * cols);
    check(
      byteLength === expected,
      'TESSERA_ERR_TRUNCATED',
      `a ${dtype} weight of shape [${shape.join(', ')}] needs ${expected} bytes but got ${byteLength}; the model file may be truncated`,
    );
  }
  return { rows, cols };
}
