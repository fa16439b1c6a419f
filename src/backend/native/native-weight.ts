/**
 * A weight held by the addon: its stored bytes (copied into aligned memory,
 * or memory-mapped from the model file), in ggml's block layout unchanged.
 */
import type { Weight } from '../backend.js';
import { DTYPE_LAYOUTS, byteSize, type DType } from '../../core/dtype.js';
import { TesseraError, check } from '../../core/errors.js';
import type { NativeHandle } from './native-addon.js';

/** The addon's dtype codes (native/src/kernels/kernel-table.h, enum DType). */
export const DTYPE_CODES: Readonly<Record<DType, number>> = {
  f32: 0,
  f16: 1,
  bf16: 2,
  q8_0: 3,
  q4_0: 4,
  q4_k: 5,
  q6_k: 6,
};

export class NativeWeight implements Weight {
  readonly shape: readonly number[];

  constructor(
    readonly dtype: DType,
    shape: readonly number[],
    /** Product of all dimensions but the last (1 for a vector). */
    readonly rows: number,
    /** The last dimension; quant blocks run along it. */
    readonly cols: number,
    readonly handle: NativeHandle,
  ) {
    this.shape = [...shape];
  }
}

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

/** The native form of a weight, or a coded error when another backend loaded it. */
export function asNativeWeight(weight: Weight): NativeWeight {
  if (weight instanceof NativeWeight) return weight;
  throw new TesseraError(
    'TESSERA_ERR_INVALID_ARGUMENT',
    'this weight was loaded by another backend; load weights with the backend that computes with them',
  );
}
