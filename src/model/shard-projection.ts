/**
 * A linear layer whose output is summed across the tensor-parallel ranks
 * (o_proj, down_proj), behind one interface so the decoder layer does not
 * care how the sum is made (see shard-spec.ts for when each is used).
 */
import type { Backend, Weight } from '../backend/backend.js';
import type { ScratchLease } from './scratch-buffers.js';
import type { TensorParallelGroup } from './tensor-parallel.js';

export interface OutputProjection {
  /**
   * x [numTokens, this rank's inputs] → [numTokens, outFeatures], complete on every rank;
   * with `scratch`, possibly in its 'projected' buffer (valid until that is taken again),
   * or in the group's shared buffer (valid until the collective after next): read it at once.
   */
  forward(x: Float32Array, numTokens: number, scratch?: ScratchLease): Promise<Float32Array>;
}

/** Row-parallel: this rank's partial over its subtree of inputs, then one all-reduce that finishes the tree. */
export class RowParallelProjection implements OutputProjection {
  constructor(
    private readonly backend: Backend,
    /** [outFeatures, this rank's inputs] */
    private readonly weight: Weight,
    private readonly group: TensorParallelGroup,
  ) {}

  forward(x: Float32Array, numTokens: number, scratch?: ScratchLease): Promise<Float32Array> {
    const length = numTokens * this.weight.shape[0];
    // The all-reduce sums in place, so the result stays in `out` — in shared memory when the group offers it, which saves a copy.
    const out = this.group.partialBuffer?.(length) ?? scratch?.take('projected', length);
    const partial = this.backend.matmul(x, this.weight, numTokens, out);
    // A device backend recording a step fills the partial on the host before the collective reads it.
    if (this.group.size > 1) this.backend.flush?.([partial]);
    return this.group.allReduce(partial);
  }
}

/**
 * Gathered: all-gather the input columns, compute this rank's range of
 * output rows over every input, all-gather the output columns. Each output
 * is one rank's whole canonical sum, so no split of the tree is needed.
 */
export class GatheredProjection implements OutputProjection {
  constructor(
    private readonly backend: Backend,
    /** [this rank's outFeatures, all inputs] */
    private readonly weight: Weight,
    private readonly group: TensorParallelGroup,
  ) {}

  async forward(x: Float32Array, numTokens: number): Promise<Float32Array> {
    if (this.group.size > 1) this.backend.flush?.([x]);
    /** [numTokens, all inputs] */
    const input = await this.group.allGatherColumns(x, numTokens);
    const slice = this.backend.matmul(input, this.weight, numTokens);
    if (this.group.size > 1) this.backend.flush?.([slice]);
    return this.group.allGatherColumns(slice, numTokens);
  }
}
