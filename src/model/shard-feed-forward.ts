/**
 * The SwiGLU MLP of one tensor-parallel rank: gate/up column-parallel over
 * this rank's intermediate rows, down through an OutputProjection that sums
 * across ranks in the canonical order.
 */
import type { Backend, Weight } from '../backend/backend.js';
import { gatedActivation, type FeedForward } from './feed-forward.js';
import type { ScratchLease } from './scratch-buffers.js';
import type { OutputProjection } from './shard-projection.js';

export class ShardFeedForward implements FeedForward {
  constructor(
    private readonly backend: Backend,
    /** [this rank's intermediate rows, hiddenSize] */
    private readonly gate: Weight,
    /** [this rank's intermediate rows, hiddenSize] */
    private readonly up: Weight,
    private readonly down: OutputProjection,
  ) {}

  forward(x: Float32Array, numTokens: number, scratch?: ScratchLease): Promise<Float32Array> {
    /** [numTokens, this rank's intermediate rows] */
    const activated = gatedActivation(this.backend, x, this.gate, this.up, numTokens, scratch);
    return this.down.forward(activated, numTokens, scratch);
  }
}
