/**
 * The SwiGLU MLP of two tensor-parallel ranks on one host that share its
 * rows as they compute (native/src/comm/row-sharing.cc): gate/up rows
 * (with silu · up) and then down rows over every input go to whichever
 * rank claims them first, within the rows each holds (ShardLayout
 * sharedRows). A fixed split makes the faster core wait for the slower one
 * at every layer; here the faster one takes more rows. Every row is one
 * rank's whole canonical sum, so the output has the bits of one process,
 * whoever computed which row.
 */
import type { Weight } from '../backend/backend.js';
import type { FeedForward } from './feed-forward.js';
import type { ScratchLease } from './scratch-buffers.js';

/** A projection whose rows the ranks of a group share (one implementation: the native shared-memory group). */
export interface RowSharing {
  /**
   * x [numTokens, K] → out [numTokens, fullRows]: x·Wᵀ with [weight], or
   * silu(x·gateᵀ) · (x·upᵀ) with [gate, up]; each weight holds rows
   * [heldBegin, heldBegin + its rows) of the projection. Every rank gets every row.
   */
  share(weights: readonly Weight[], x: Float32Array, numTokens: number, heldBegin: number, fullRows: number, out: Float32Array): Float32Array;
}

export interface SharedFeedForwardWeights {
  /** [held intermediate rows, hiddenSize] */
  gate: Weight;
  /** [held intermediate rows, hiddenSize] */
  up: Weight;
  /** [held hidden rows, intermediateSize] */
  down: Weight;
}

export class SharedFeedForward implements FeedForward {
  constructor(
    private readonly rows: RowSharing,
    private readonly weights: SharedFeedForwardWeights,
    /** First intermediate row and first hidden row this rank holds. */
    private readonly heldBegin: { intermediate: number; hidden: number },
    private readonly sizes: { intermediate: number; hidden: number },
  ) {}

  forward(x: Float32Array, numTokens: number, scratch?: ScratchLease): Promise<Float32Array> {
    const { intermediate, hidden } = this.sizes;
    /** [numTokens, intermediateSize] */
    const activated = this.rows.share([this.weights.gate, this.weights.up], x, numTokens, this.heldBegin.intermediate, intermediate, scratch?.take('gate', numTokens * intermediate) ?? new Float32Array(numTokens * intermediate));
    /** [numTokens, hiddenSize] */
    const out = scratch?.take('projected', numTokens * hidden) ?? new Float32Array(numTokens * hidden);
    return Promise.resolve(this.rows.share([this.weights.down], activated, numTokens, this.heldBegin.hidden, hidden, out));
  }
}
