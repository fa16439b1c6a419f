/**
 * A weight as the reference backend keeps it: the stored bytes, plus a
 * float32 copy made the first time a whole-matrix op needs it. Ops that read
 * a few rows (embedding lookups, readRows) decode only those rows, so a large
 * embedding table never has to be expanded.
 */
import { checkWeightShape } from '../weight-shape.js';
import type { Weight } from '../backend.js';
import { byteSize, type DType } from '../../core/dtype.js';
import { TesseraError, check } from '../../core/errors.js';
import { decodeValues } from './weight-values.js';

export class ReferenceWeight implements Weight {
  readonly dtype: DType;
  readonly shape: readonly number[];
  /** Product of all dimensions but the last (1 for a vector). */
  readonly rows: number;
  /** The last dimension; quant blocks run along it. */
  readonly cols: number;
  private readonly bytes: Uint8Array;
  /** [rows, cols], decoded on first use. */
  private dense: Float32Array | undefined;

  constructor(dtype: DType, shape: readonly number[], bytes: Uint8Array) {
    const { rows, cols } = checkWeightShape(dtype, shape, bytes.byteLength);
    this.dtype = dtype;
    this.shape = [...shape];
    this.rows = rows;
    this.cols = cols;
    // A copy: the caller may reuse or unmap its buffer after loading.
    this.bytes = bytes.slice();
  }

  /** All values, [rows, cols]. */
  values(): Float32Array {
    if (this.dense === undefined) this.dense = decodeValues(this.dtype, this.bytes, this.rows * this.cols);
    return this.dense;
  }

  /** A fresh copy of rows [rowStart, rowEnd), [rowEnd - rowStart, cols]. */
  rowValues(rowStart: number, rowEnd: number): Float32Array {
    check(
      Number.isInteger(rowStart) && Number.isInteger(rowEnd) && 0 <= rowStart && rowStart <= rowEnd && rowEnd <= this.rows,
      'TESSERA_ERR_INVALID_ARGUMENT',
      `rows [${rowStart}, ${rowEnd}) are outside a weight of ${this.rows} rows`,
    );
    if (this.dense !== undefined) return this.dense.slice(rowStart * this.cols, rowEnd * this.cols);
    const rowBytes = byteSize(this.dtype, this.cols);
    const slice = this.bytes.subarray(rowStart * rowBytes, rowEnd * rowBytes);
    return decodeValues(this.dtype, slice, (rowEnd - rowStart) * this.cols);
  }
}

/** The reference form of a weight, or a coded error when another backend loaded it. */
export function asReferenceWeight(weight: Weight): ReferenceWeight {
  if (weight instanceof ReferenceWeight) return weight;
  throw new TesseraError(
    'TESSERA_ERR_INVALID_ARGUMENT',
    'this weight was loaded by another backend; load weights with the backend that computes with them',
  );
}
