/**
 * What one rank of a (tp, pp) mesh computes: the Transformer over its
 * shards for its stage's layers, plus the vocab-parallel ends — embedding
 * rows outside this rank's vocab range are zero and one all-reduce fills
 * them in (exact: only the owning rank adds a nonzero row), and the LM head
 * computes this rank's vocab columns of the logits, then all-gathers them
 * (or, for rows picked greedily, only each slice's best: vocab-argmax.ts).
 * A shared stage (shared-stage.ts) is instead the whole stage on each rank,
 * its matmuls' rows shared as they compute.
 */
import type { Backend } from '../backend/backend.js';
import type { ModelConfig } from '../core/model-config.js';
import { TesseraError } from '../core/errors.js';
import type { Batch } from './batch.js';
import type { FeedForward } from './feed-forward.js';
import { ShardFeedForward } from './shard-feed-forward.js';
import { SharedFeedForward } from './shared-feed-forward.js';
import { isSharedWeight, sharingBackend, type RowSharing } from './shared-stage.js';
import { SINGLE_RANK } from './tensor-parallel.js';
import { GatheredProjection, RowParallelProjection, type OutputProjection } from './shard-projection.js';
import type { StagePlan, StageWeights } from './shard-weights.js';
import type { TensorParallelGroup } from './tensor-parallel.js';
import { Transformer } from './transformer.js';
import { combineBests, fitsIdsInFloats, sliceBests } from './vocab-argmax.js';

export class StageModel {
  readonly transformer: Transformer;
  /** The collectives of embed and head: the stage's group, or none in a shared stage (every rank holds all of it). */
  private readonly group: TensorParallelGroup;

  constructor(
    readonly config: ModelConfig,
    private readonly weights: StageWeights,
    private readonly backend: Backend,
    group: TensorParallelGroup,
    readonly plan: StagePlan,
    /** Per layer, replacing the dense tensor-parallel MLPs (MoE layers: moe-stage.ts). */
    feedForwardOverrides?: FeedForward[],
    /** How the ranks share matmul rows, for a shared stage's layout (ShardLayout.shared). */
    rowSharing?: RowSharing,
  ) {
    const layers = weights.transformer.layers;
    if (weights.layout.shared) {
      if (!rowSharing) throw new TesseraError('TESSERA_ERR_INTERNAL', 'a shared stage was laid out for a group that cannot share rows');
      // Every rank runs the whole stage; only the matmuls' rows are split, inside the sharing backend.
      this.group = SINGLE_RANK;
      this.transformer = sharedTransformer(config, weights, sharingBackend(backend, rowSharing), rowSharing);
    } else {
      this.group = group;
      const projection = (mode: 'row' | 'gathered', weight: Parameters<typeof backend.matmul>[1]): OutputProjection =>
        mode === 'row' ? new RowParallelProjection(backend, weight, group) : new GatheredProjection(backend, weight, group);
      const feedForwards: FeedForward[] = layers.map((layer, index) => {
        const override = feedForwardOverrides?.[index];
        if (override) return override;
        const dense = layer.feedForward;
        if (!dense) throw new TesseraError('TESSERA_ERR_SHARD_CONSTRAINT', 'mixture-of-experts layers are not split across ranks by this command yet; run it with --tp 1 --pp 1');
        const mode = weights.layout.feedForward;
        if (mode === 'shared') throw new TesseraError('TESSERA_ERR_INTERNAL', 'a shared feed-forward outside a shared stage');
        return new ShardFeedForward(backend, dense.gate, dense.up, projection(mode, dense.down));
      });
      const attentionOutputs = layers.map((layer) => projection(weights.layout.attentionOutput, layer.attentionOutput));
      this.transformer = new Transformer(config, weights.transformer, backend, group, feedForwards, attentionOutputs);
    }
    // Expert layers route and exchange tokens on the host between ops: those stages run op by op.
    this.recordsSteps = backend.beginStep !== undefined && !feedForwardOverrides?.some((override) => override !== undefined);
  }

  /**
   * Whether a rank's step is recorded as device steps (a device backend, dense
   * layers): ops run together, one submission between two collectives.
   */
  readonly recordsSteps: boolean;

  /** Opens a device step when this stage records them (beginStep of the backend). */
  beginStep(): void {
    if (this.recordsSteps) this.backend.beginStep?.();
  }

  /** Runs the rest of the device step and fills `arrays` (host data again). */
  endStep(arrays: readonly Float32Array[]): void {
    if (this.recordsSteps) this.backend.endStep?.(arrays);
  }

  get isFirst(): boolean {
    return this.plan.startLayer === 0;
  }

  get isLast(): boolean {
    return this.plan.endLayer === this.config.numLayers;
  }

  /** Whether the stage's ranks share rows (ShardLayout.shared): each then runs the whole stage and holds every KV head. */
  get sharesRows(): boolean {
    return this.weights.layout.shared !== undefined;
  }

  /** KV heads [start, end) of the whole model that this rank holds. */
  get kvHeads(): readonly [number, number] {
    return this.weights.layout.kvHeads;
  }

  /** The config of this rank's KV cache: its own KV heads only. */
  get kvConfig(): ModelConfig {
    const [start, end] = this.weights.layout.kvHeads;
    return { ...this.config, numKvHeads: end - start };
  }

  /** ids [numTokens] → hidden [numTokens, hiddenSize], the same on every rank of the stage. */
  async embed(ids: Int32Array): Promise<Float32Array> {
    const { hiddenSize, vocabSize } = this.config;
    const [start, end] = this.weights.layout.vocab;
    for (const id of ids) {
      if (!(id >= 0 && id < vocabSize)) throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `token id ${id} is outside the vocabulary [0, ${vocabSize})`);
    }
    if (this.group.size === 1) return this.backend.embed(ids, this.weights.transformer.tokenEmbedding);
    const mine = [...ids.keys()].filter((t) => ids[t] >= start && ids[t] < end);
    /** [numTokens, hiddenSize] */
    const hidden = new Float32Array(ids.length * hiddenSize);
    if (mine.length > 0) {
      const rows = this.backend.embed(Int32Array.from(mine, (t) => ids[t] - start), this.weights.transformer.tokenEmbedding);
      this.backend.flush?.([rows]); // copied on the host
      mine.forEach((t, i) => hidden.set(rows.subarray(i * hiddenSize, (i + 1) * hiddenSize), t * hiddenSize));
    }
    return this.group.allReduce(hidden);
  }

  /** This stage's layers over hidden [numTokens, hiddenSize], in place. */
  runLayers(hidden: Float32Array, batch: Batch): Promise<void> {
    return this.transformer.runLayers(hidden, batch, this.plan.startLayer, this.plan.endLayer);
  }

  /** Whether the last stage's logits are split by vocabulary across ranks, with ids exact as floats (greedyIds applies). */
  get splitsLogits(): boolean {
    return this.group.size > 1 && fitsIdsInFloats(this.config.vocabSize);
  }

  /**
   * Final norm and LM head → [rows] the greedy id of each logit row, on
   * every rank of the last stage, without gathering the rows: each rank
   * sends its slice's best (score, id), one pair a row (vocab-argmax.ts),
   * and the ids equal the sampler's argmax over the whole rows. Only where
   * splitsLogits.
   */
  async greedyIds(hidden: Float32Array, batch: Batch): Promise<Int32Array> {
    if (!this.splitsLogits) throw new TesseraError('TESSERA_ERR_INTERNAL', 'greedy ids without gathering need logits split across ranks');
    const { slice, start, end } = this.vocabSlice(hidden, batch);
    /** [rows, 2]: each row's best (score, id) in this slice */
    const bests = sliceBests(slice, end - start, start);
    return combineBests(await this.group.allGatherColumns(bests, bests.length / 2), this.group.size);
  }

  /** Final norm and LM head → [rows, vocabSize] on every rank of the last stage. */
  async head(hidden: Float32Array, batch: Batch): Promise<Float32Array> {
    const { slice, start, end } = this.vocabSlice(hidden, batch);
    return this.group.allGatherColumns(slice, slice.length / (end - start));
  }

  /** Final norm and LM head over this rank's vocab ids [start, end): slice [rows, end - start], on the host when the ranks exchange it. */
  private vocabSlice(hidden: Float32Array, batch: Batch): { slice: Float32Array; start: number; end: number } {
    /** [rows, this rank's vocab columns] */
    const slice = this.transformer.head(hidden, batch);
    if (this.group.size > 1) this.backend.flush?.([slice]);
    const [start, end] = this.weights.layout.vocab;
    return { slice, start, end };
  }
}

/** A shared stage's Transformer: every head, over `backend` whose matmuls of shared weights are shared. */
function sharedTransformer(config: ModelConfig, weights: StageWeights, backend: Backend, rows: RowSharing): Transformer {
  const layers = weights.transformer.layers;
  const feedForwards = layers.map((layer) => {
    const dense = layer.feedForward;
    if (!dense || !isSharedWeight(dense.gate) || !isSharedWeight(dense.up) || !isSharedWeight(dense.down)) throw new TesseraError('TESSERA_ERR_INTERNAL', 'a shared stage needs dense feed-forwards of shared weights');
    return new SharedFeedForward(rows, dense.gate, dense.up, dense.down);
  });
  const attentionOutputs = layers.map((layer) => new RowParallelProjection(backend, layer.attentionOutput, SINGLE_RANK));
  return new Transformer(config, weights.transformer, backend, SINGLE_RANK, feedForwards, attentionOutputs);
}
