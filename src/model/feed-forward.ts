/**
 * The per-layer feed-forward block behind one interface, so a dense SwiGLU MLP
 * and a mixture of experts are interchangeable inside the decoder layer.
 */
import type { Backend, Weight } from '../backend/backend.js';
import type { TensorParallelGroup } from './tensor-parallel.js';

export interface FeedForward {
  /** x [numTokens, hiddenSize] (already normed) → [numTokens, hiddenSize], reduced across ranks. */
  forward(x: Float32Array, numTokens: number): Promise<Float32Array>;
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
  constructor(
    private readonly backend: Backend,
    private readonly weights: DenseFeedForwardWeights,
    private readonly group: TensorParallelGroup,
  ) {}

  async forward(x: Float32Array, numTokens: number): Promise<Float32Array> {
    const { backend, weights } = this;
    /** [numTokens, intermediateSize] */
    const [gate, up] = backend.matmulMany(x, [weights.gate, weights.up], numTokens);
    const activated = backend.siluMul(gate, up);
    return this.group.allReduce(backend.matmul(activated, weights.down, numTokens));
  }
}
