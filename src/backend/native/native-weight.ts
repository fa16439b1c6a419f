/**
 * A weight held by the addon: its stored bytes (copied into aligned memory,
 * or memory-mapped from the model file), in ggml's block layout unchanged.
 */
import type { Weight } from '../backend.js';
import type { DType } from '../../core/dtype.js';
import { TesseraError } from '../../core/errors.js';
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

export { checkWeightShape } from '../weight-shape.js';

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

/** The native form of a weight, or a coded error when another backend loaded it. */
export function asNativeWeight(weight: Weight): NativeWeight {
  if (weight instanceof NativeWeight) return weight;
  throw new TesseraError(
    'TESSERA_ERR_INVALID_ARGUMENT',
    'this weight was loaded by another backend; load weights with the backend that computes with them',
  );
}
