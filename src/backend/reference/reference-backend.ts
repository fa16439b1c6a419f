/**
 * The pure-TypeScript backend: the definition of every op's arithmetic, slow
 * but exact to the contract in backend.ts. Models run on it in tests and
 * wherever the native addon is missing.
 */
import { gatherRowsOnHost } from '../gather-rows.js';
import {
  reductionLeafSize, type AttentionArgs, type AttentionBatchArgs, type Backend, type KvPool, type KvWriteBatchArgs, type RopeArgs, type Weight,
} from '../backend.js';
import type { DType } from '../../core/dtype.js';
import { check } from '../../core/errors.js';
import { checkMatmulMany, checkOutLength } from '../out-buffer.js';
import { ReferenceWeight, asReferenceWeight } from './reference-weight.js';
import { matmulCanonical } from './matmul.js';
import { attention, attentionBatch, writeKv, writeKvBatch } from './attention.js';
import { addBias, addInPlace, rmsNorm, rope, siluMul } from './pointwise.js';

export class ReferenceBackend implements Backend {
  readonly name = 'reference';

  loadWeight(dtype: DType, shape: readonly number[], bytes: Uint8Array): Weight {
    return new ReferenceWeight(dtype, shape, bytes);
  }

  readRows(weight: Weight, rowStart: number, rowEnd: number): Float32Array {
    return asReferenceWeight(weight).rowValues(rowStart, rowEnd);
  }

  matmul(x: Float32Array, weight: Weight, numTokens: number, out?: Float32Array): Float32Array {
    const w = asReferenceWeight(weight);
    return intoOut(matmulCanonical(x, w.values(), numTokens, w.rows, w.cols, reductionLeafSize(w.dtype)), out);
  }

  matmulMany(x: Float32Array, weights: readonly Weight[], numTokens: number, outs?: readonly Float32Array[]): Float32Array[] {
    checkMatmulMany(weights.length, outs);
    return weights.map((weight, i) => intoOut(this.matmul(x, weight, numTokens), outs?.[i]));
  }

  embed(ids: Int32Array, table: Weight): Float32Array {
    const w = asReferenceWeight(table);
    /** [numTokens, dim] */
    const out = new Float32Array(ids.length * w.cols);
    for (let t = 0; t < ids.length; t++) {
      const id = ids[t];
      check(
        id >= 0 && id < w.rows,
        'TESSERA_ERR_INVALID_ARGUMENT',
        `token id ${id} is outside the embedding table of ${w.rows} entries; the tokenizer and model do not match`,
      );
      out.set(w.rowValues(id, id + 1), t * w.cols);
    }
    return out;
  }

  rmsNorm(x: Float32Array, weight: Weight, numRows: number, eps: number, out?: Float32Array): Float32Array {
    return intoOut(rmsNorm(x, asReferenceWeight(weight).values(), numRows, eps), out);
  }

  addBias(x: Float32Array, bias: Weight, numRows: number): void {
    addBias(x, asReferenceWeight(bias).values(), numRows);
  }

  rope(args: RopeArgs): void {
    rope(args);
  }

  writeKv(pool: KvPool, blockTable: Int32Array, positions: Int32Array, values: Float32Array): void {
    writeKv(pool, blockTable, positions, values);
  }

  attention(args: AttentionArgs): Float32Array {
    return attention(args);
  }

  writeKvBatch(args: KvWriteBatchArgs): void {
    writeKvBatch(args);
  }

  attentionBatch(args: AttentionBatchArgs): Float32Array {
    return attentionBatch(args);
  }

  siluMul(gate: Float32Array, up: Float32Array, out?: Float32Array): Float32Array {
    return intoOut(siluMul(gate, up), out);
  }

  gatherRows(x: Float32Array, rows: Int32Array, rowSize: number): Float32Array {
    return gatherRowsOnHost(x, rows, rowSize);
  }

  addInPlace(a: Float32Array, b: Float32Array): void {
    addInPlace(a, b);
  }
}

/** `result`, or a copy of it in the caller's `out` (same length, else a coded error). */
function intoOut(result: Float32Array, out: Float32Array | undefined): Float32Array {
  if (!out) return result;
  checkOutLength(out, result.length);
  out.set(result);
  return out;
}
