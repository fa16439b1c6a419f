/**
 * The SwiGLU MLP of one tensor-parallel rank: gate/up column-parallel over
 * this rank's intermediate rows, down through an OutputProjection that sums
 * across ranks in the canonical order.
 */
import type { Backend, Weight } from '../backend/backend.js';
import type { FeedForward } from './feed-forward.js';
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

  forward(x: Float32Array, numTokens: number): Promise<Float32Array> {
    const { backend } = this;
    /** [numTokens, this rank's intermediate rows] */
    const [gate, up] = backend.matmulMany(x, [this.gate, this.up], numTokens);
    const activated = backend.siluMul(gate, up);
    return this.down.forward(activated, numTokens);
  }
}
