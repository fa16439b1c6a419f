/**
 * The per-layer feed-forward block behind one interface, so a dense SwiGLU MLP
 * and a mixture of experts are interchangeable inside the decoder layer.
 */
import type { Backend, Weight } from '../backend/backend.js';
import type { ScratchLease } from './scratch-buffers.js';
import { RowParallelProjection } from './shard-projection.js';
import type { TensorParallelGroup } from './tensor-parallel.js';

export interface FeedForward {
  /**
   * x [numTokens, hiddenSize] (already normed) → [numTokens, hiddenSize], reduced across ranks.
   * `scratch` may hold the block's temporaries; the result must not live in it.
   */
  forward(x: Float32Array, numTokens: number, scratch?: ScratchLease): Promise<Float32Array>;
}

export interface DenseFeedForwardWeights {
  /** [intermediateSize, hiddenSize] (this rank's column shard) */
  gate: Weight;
  /** [intermediateSize, hiddenSize] (this rank's column shard) */
  up: Weight;
  /** [hiddenSize, intermediateSize] (this rank's row shard) */
  down: Weight;
}

/** down(silu(gate(x)) * up(x)): gate/up column-parallel, down row-parallel with one all-reduce. */
export class DenseFeedForward implements FeedForward {
  private readonly down: RowParallelProjection;

  constructor(
    private readonly backend: Backend,
    private readonly weights: DenseFeedForwardWeights,
    group: TensorParallelGroup,
  ) {
    this.down = new RowParallelProjection(backend, weights.down, group);
  }

  forward(x: Float32Array, numTokens: number, scratch?: ScratchLease): Promise<Float32Array> {
    /** [numTokens, intermediateSize] */
    const activated = gatedActivation(this.backend, x, this.weights.gate, this.weights.up, numTokens, scratch);
    return this.down.forward(activated, numTokens, scratch);
  }
}

/** silu(x·gateᵀ) * (x·upᵀ) → [numTokens, rows]: in scratch buffers when given (the product over gate's). */
export function gatedActivation(backend: Backend, x: Float32Array, gate: Weight, up: Weight, numTokens: number, scratch?: ScratchLease): Float32Array {
  const outs = scratch && [scratch.take('gate', numTokens * gate.shape[0]), scratch.take('up', numTokens * up.shape[0])];
  const [gated, upped] = backend.matmulMany(x, [gate, up], numTokens, outs);
  return backend.siluMul(gated, upped, scratch ? gated : undefined);
}
