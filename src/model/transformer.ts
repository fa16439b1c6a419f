/**
 * The Llama-family decoder (Llama 2/3, Mistral, Qwen2, Qwen3), written once
 * against a Backend. It knows nothing of scheduling: it runs a batch of
 * sequences' tokens at given positions over their KV blocks. Parallelism
 * reaches it only through the collectives of a TensorParallelGroup, and a
 * pipeline stage runs just its own layers (embed → layers → head are
 * separate steps).
 */
import type { Backend } from '../backend/backend.js';
import { gatherRowsOnHost } from '../backend/gather-rows.js';
import type { ModelConfig } from '../core/model-config.js';
import { logitRowIndices, singleSequenceBatch, type Batch, type LogitRows, type SequenceKv } from './batch.js';
import { batchKv, copySegmentRows, type BatchKv } from './batch-kv.js';
import type { FeedForward } from './feed-forward.js';
import { ExpertLoad } from './moe-expert-load.js';
import { createFeedForwards } from './moe-feed-forward.js';
import { ropeInverseFrequencies } from './rope-frequencies.js';
import { ScratchBuffers, type ScratchLease } from './scratch-buffers.js';
import { RowParallelProjection, type OutputProjection } from './shard-projection.js';
import { SINGLE_RANK, type TensorParallelGroup } from './tensor-parallel.js';
import type { LayerWeights, TransformerWeights } from './transformer-weights.js';

export type { LogitRows, SequenceKv } from './batch.js';

/** The heads and sizes this rank computes (all of them with one rank). */
export interface LocalDims {
  numHeads: number;
  numKvHeads: number;
}

export class Transformer {
  /** [ropeDims / 2] */
  private readonly inverseFrequencies: Float32Array;
  private readonly feedForwards: FeedForward[];
  /** Per layer: o_proj and its cross-rank sum. */
  private readonly attentionOutputs: OutputProjection[];
  /** Tokens routed to each expert of each MoE layer (empty rows for dense layers). */
  readonly expertLoad: ExpertLoad;
  private readonly local: LocalDims;
  /** Temporaries of runLayers, reused across layers and steps. */
  private readonly scratch = new ScratchBuffers();

  constructor(
    readonly config: ModelConfig,
    private readonly weights: TransformerWeights,
    private readonly backend: Backend,
    private readonly group: TensorParallelGroup = SINGLE_RANK,
    feedForwards?: FeedForward[],
    attentionOutputs?: OutputProjection[],
  ) {
    this.inverseFrequencies = ropeInverseFrequencies(config, weights.ropeFactors);
    this.local = { numHeads: config.numHeads / group.size, numKvHeads: Math.max(1, config.numKvHeads / group.size) };
    this.expertLoad = new ExpertLoad(config.numLayers);
    this.feedForwards = feedForwards ?? createFeedForwards(weights, backend, config.moe, config.hiddenSize, group, this.expertLoad);
    this.attentionOutputs = attentionOutputs ?? weights.layers.map((layer) => new RowParallelProjection(backend, layer.attentionOutput, group));
  }

  /** Logits of one sequence's tokens: [rows, vocabSize]. */
  async forward(ids: Int32Array, positions: Int32Array, kv: SequenceKv, rows: LogitRows): Promise<Float32Array> {
    return this.forwardBatch(singleSequenceBatch(ids, positions, kv, rows));
  }

  /**
   * Logits of the batch rows its segments ask for, in segment order: [rows, vocabSize].
   * One backend step: a device backend runs the whole pass as one submission and reads back only the logits.
   */
  async forwardBatch(batch: Batch): Promise<Float32Array> {
    const { backend } = this;
    backend.beginStep?.();
    let ended = false;
    try {
      const hidden = this.embed(batch.ids);
      await this.runLayers(hidden, batch, 0, this.config.numLayers);
      const logits = this.head(hidden, batch);
      ended = true;
      backend.endStep?.([logits]);
      return logits;
    } finally {
      if (!ended) backend.endStep?.([]);
    }
  }

  /** [numTokens, hiddenSize] */
  embed(ids: Int32Array): Float32Array {
    return this.backend.embed(ids, this.weights.tokenEmbedding);
  }

  /** Runs layers [startLayer, endLayer) over hidden [numTokens, hiddenSize], in place. */
  async runLayers(hidden: Float32Array, batch: Batch, startLayer: number, endLayer: number): Promise<void> {
    const numTokens = batch.ids.length;
    const kv = batchKv(batch);
    const scratch = this.scratch.lease();
    try {
      for (let layer = startLayer; layer < endLayer; layer++) {
        const weights = this.weights.layers[layer];
        await this.attentionBlock(hidden, numTokens, kv, layer, scratch);
        const normed = this.backend.rmsNorm(hidden, weights.feedForwardNorm, numTokens, this.config.rmsNormEps, scratch?.take('normed', hidden.length));
        this.backend.addInPlace(hidden, await this.feedForwards[layer].forward(normed, numTokens, scratch));
      }
    } finally {
      scratch?.release();
    }
  }

  /** Final norm and LM head over the rows that want logits → [rows, vocabSize]. */
  head(hidden: Float32Array, batch: Batch): Float32Array {
    const hiddenSize = this.config.hiddenSize;
    const rows = logitRowIndices(batch);
    /** [rows.length, hiddenSize]: hidden itself when every row wants logits (a decode step) */
    let selected = hidden;
    if (rows.length * hiddenSize !== hidden.length || rows.some((row, i) => row !== i)) {
      selected = this.backend.gatherRows?.(hidden, Int32Array.from(rows), hiddenSize) ?? gatherRowsOnHost(hidden, rows, hiddenSize);
    }
    const normed = this.backend.rmsNorm(selected, this.weights.outputNorm, rows.length, this.config.rmsNormEps);
    return this.backend.matmul(normed, this.weights.output, rows.length);
  }

  /**
   * hidden [numTokens, hiddenSize] += attention(rmsNorm(hidden)). Each op runs
   * once over the whole batch (once per KV cache for the KV ops), so a decode
   * step of many sequences makes a handful of backend calls per layer.
   */
  private async attentionBlock(hidden: Float32Array, numTokens: number, kv: BatchKv, layer: number, scratch?: ScratchLease): Promise<void> {
    const { backend, config, local } = this;
    const weights = this.weights.layers[layer];
    const normed = backend.rmsNorm(hidden, weights.attentionNorm, numTokens, config.rmsNormEps, scratch?.take('normed', hidden.length));
    /** values: [numTokens, numKvHeads, headDim] */
    const [queryProjected, keyProjected, values] = this.projectQkv(normed, weights, numTokens, scratch);
    /** [numTokens, numHeads, headDim] */
    const query = this.headNorm(queryProjected, weights.queryNorm);
    /** [numTokens, numKvHeads, headDim] */
    const keys = this.headNorm(keyProjected, weights.keyNorm);
    this.rotate(query, kv.positions, local.numHeads);
    this.rotate(keys, kv.positions, local.numKvHeads);
    const queryWidth = local.numHeads * config.headDim;
    /** [numTokens, numHeads, headDim] */
    let attended: Float32Array | undefined;
    const single = kv.caches.length === 1;
    for (const cache of kv.caches) {
      const [keyCache, valueCache] = [cache.keys[layer], cache.values[layer]];
      backend.writeKvBatch({ keyCache, valueCache, keys, values, segments: cache.segments });
      const output = backend.attentionBatch({
        query,
        keyCache,
        valueCache,
        segments: cache.segments,
        numHeads: local.numHeads,
        numKvHeads: local.numKvHeads,
        headDim: config.headDim,
        scale: 1 / Math.sqrt(config.headDim),
        out: single ? scratch?.take('attended', numTokens * queryWidth) : undefined,
      });
      if (single) attended = output;
      else {
        backend.flush?.([output]); // copied on the host
        copySegmentRows(output, (attended ??= new Float32Array(numTokens * queryWidth)), cache.segments, queryWidth);
      }
    }
    const projected = await this.attentionOutputs[layer].forward(attended ?? new Float32Array(numTokens * queryWidth), numTokens, scratch);
    backend.addInPlace(hidden, projected);
  }

  /** → query [numTokens, numHeads·headDim], key and value [numTokens, numKvHeads·headDim], biases added; one backend job. */
  private projectQkv(x: Float32Array, weights: LayerWeights, numTokens: number, scratch?: ScratchLease): Float32Array[] {
    const qkv = [weights.query, weights.key, weights.value];
    const outs = scratch && qkv.map((weight, i) => scratch.take(`qkv${i}`, numTokens * weight.shape[0]));
    const projected = this.backend.matmulMany(x, qkv, numTokens, outs);
    [weights.queryBias, weights.keyBias, weights.valueBias].forEach((bias, i) => {
      if (bias) this.backend.addBias(projected[i], bias, numTokens);
    });
    return projected;
  }

  /** Qwen3: RMSNorm over each head vector. */
  private headNorm(x: Float32Array, norm: LayerWeights['queryNorm']): Float32Array {
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

