/**
 * The Llama-family decoder (Llama 2/3, Mistral, Qwen2, Qwen3), written once
 * against a Backend. It knows nothing of batching policy or parallelism: it
 * runs a run of tokens of one sequence at given positions over that
 * sequence's KV blocks.
 */
import type { Backend, KvPool } from '../backend/backend.js';
import type { ModelConfig } from '../core/model-config.js';
import { ropeInverseFrequencies } from './rope-frequencies.js';
import type { LayerWeights, TransformerWeights } from './transformer-weights.js';

/** Where one sequence's keys and values live. */
export interface SequenceKv {
  /** Per layer. */
  keys: readonly KvPool[];
  /** Per layer. */
  values: readonly KvPool[];
  blockTable: Int32Array;
}

export type LogitRows = 'last' | 'all';

export class Transformer {
  /** [ropeDims / 2] */
  private readonly inverseFrequencies: Float32Array;

  constructor(
    readonly config: ModelConfig,
    private readonly weights: TransformerWeights,
    private readonly backend: Backend,
  ) {
    this.inverseFrequencies = ropeInverseFrequencies(config, weights.ropeFactors);
  }

  /**
   * Runs `ids` at `positions` (their KV entries are written), and returns the
   * logits of the last token or of every token: [rows, vocabSize].
   */
  forward(ids: Int32Array, positions: Int32Array, kv: SequenceKv, rows: LogitRows): Float32Array {
    const numTokens = ids.length;
    /** [numTokens, hiddenSize] */
    const hidden = this.backend.embed(ids, this.weights.tokenEmbedding);
    for (let layer = 0; layer < this.config.numLayers; layer++) {
      this.attentionBlock(hidden, positions, kv, layer);
      this.feedForwardBlock(hidden, this.weights.layers[layer], numTokens);
    }
    const selected = rows === 'all' ? hidden : hidden.subarray((numTokens - 1) * this.config.hiddenSize);
    const selectedRows = rows === 'all' ? numTokens : 1;
    const normed = this.backend.rmsNorm(selected, this.weights.outputNorm, selectedRows, this.config.rmsNormEps);
    return this.backend.matmul(normed, this.weights.output, selectedRows);
  }

  /** hidden [numTokens, hiddenSize] += attention(rmsNorm(hidden)) */
  private attentionBlock(hidden: Float32Array, positions: Int32Array, kv: SequenceKv, layer: number): void {
    const { backend, config } = this;
    const weights = this.weights.layers[layer];
    const numTokens = positions.length;
    const normed = backend.rmsNorm(hidden, weights.attentionNorm, numTokens, config.rmsNormEps);
    /** [numTokens, numHeads, headDim] */
    const query = this.project(normed, weights.query, weights.queryBias, numTokens);
    /** [numTokens, numKvHeads, headDim] */
    const key = this.project(normed, weights.key, weights.keyBias, numTokens);
    /** [numTokens, numKvHeads, headDim] */
    const value = this.project(normed, weights.value, weights.valueBias, numTokens);
    const normedQuery = weights.queryNorm ? this.headNorm(query, weights, 'query') : query;
    const normedKey = weights.keyNorm ? this.headNorm(key, weights, 'key') : key;
    this.rotate(normedQuery, positions, config.numHeads);
    this.rotate(normedKey, positions, config.numKvHeads);
    backend.writeKv(kv.keys[layer], kv.blockTable, positions, normedKey);
    backend.writeKv(kv.values[layer], kv.blockTable, positions, value);
    const attended = backend.attention({
      query: normedQuery,
      keyCache: kv.keys[layer],
      valueCache: kv.values[layer],
      blockTable: kv.blockTable,
      positions,
      numHeads: config.numHeads,
      numKvHeads: config.numKvHeads,
      headDim: config.headDim,
      scale: 1 / Math.sqrt(config.headDim),
    });
    backend.addInPlace(hidden, backend.matmul(attended, weights.attentionOutput, numTokens));
  }

  /** hidden [numTokens, hiddenSize] += down(silu(gate(x)) * up(x)), x = rmsNorm(hidden) */
  private feedForwardBlock(hidden: Float32Array, weights: LayerWeights, numTokens: number): void {
    const { backend } = this;
    const normed = backend.rmsNorm(hidden, weights.feedForwardNorm, numTokens, this.config.rmsNormEps);
    /** [numTokens, intermediateSize] */
    const activated = backend.siluMul(backend.matmul(normed, weights.gate, numTokens), backend.matmul(normed, weights.up, numTokens));
    backend.addInPlace(hidden, backend.matmul(activated, weights.down, numTokens));
  }

  private project(x: Float32Array, weight: LayerWeights['query'], bias: LayerWeights['queryBias'], numTokens: number): Float32Array {
    const projected = this.backend.matmul(x, weight, numTokens);
    if (bias) this.backend.addBias(projected, bias, numTokens);
    return projected;
  }

  /** Qwen3: RMSNorm over each head vector. */
  private headNorm(x: Float32Array, weights: LayerWeights, which: 'query' | 'key'): Float32Array {
    const norm = which === 'query' ? weights.queryNorm : weights.keyNorm;
    if (!norm) return x;
    return this.backend.rmsNorm(x, norm, x.length / this.config.headDim, this.config.rmsNormEps);
  }

  private rotate(x: Float32Array, positions: Int32Array, numHeads: number): void {
    this.backend.rope({
      x,
      positions,
      numHeads,
      headDim: this.config.headDim,
      ropeDims: this.config.ropeDims,
      style: this.config.ropeStyle,
      inverseFrequencies: this.inverseFrequencies,
    });
  }
}
