/**
 * A stage's collectives in the shape the model layer asks for
 * (TensorParallelGroup in src/model/tensor-parallel.ts): an all-reduce that
 * finishes the canonical tree, and an all-gather of column slices, which may
 * differ in width from rank to rank.
 */
import { check } from '../core/errors.js';
import type { Communicator } from './collectives.js';
import { asFloats, floatBytes } from './transport.js';

export class CollectiveGroup {
  constructor(private readonly communicator: Communicator) {}

  get size(): number {
    return this.communicator.size;
  }

  get rank(): number {
    return this.communicator.index;
  }

  /** Sums in place: `partial` holds the sum afterwards and is returned. */
  allReduce(partial: Float32Array): Promise<Float32Array> {
    return this.communicator.allReduce(partial);
  }

  /** Each member's [rows, width_i] → [rows, sum of widths], members' columns in group order. */
  async allGatherColumns(slice: Float32Array, rows: number): Promise<Float32Array> {
    if (this.size === 1) return slice;
    const parts = (await this.communicator.allGather(floatBytes(slice))).map(asFloats);
    const widths = parts.map((part) => part.length / rows);
    check(widths.every(Number.isInteger), 'TESSERA_ERR_INTERNAL', `column slices of ${rows} rows have lengths ${parts.map((p) => p.length).join(', ')}`);
    const total = widths.reduce((a, b) => a + b, 0);
    /** [rows, total] */
    const out = new Float32Array(rows * total);
    let column = 0;
    parts.forEach((part, i) => {
      for (let row = 0; row < rows; row++) out.set(part.subarray(row * widths[i], (row + 1) * widths[i]), row * total + column);
      column += widths[i];
    });
    return out;
  }
}
