/**
 * Loads the weights one rank of a (tp, pp) mesh holds: its stage's layers,
 * each weight cut by its ShardSpec, read straight from the file's byte
 * ranges (rows for column/vocab shards, one range per row for row shards),
 * so a rank reads only its own bytes (store.bytesRead shows it). Weights a
 * stage does not hold are ABSENT: using one is a coded error, not a wrong
 * result.
 */
import type { Backend, Weight } from '../backend/backend.js';
import type { DType } from '../core/dtype.js';
import type { ModelConfig } from '../core/model-config.js';
import { TesseraError } from '../core/errors.js';
import { matrixShape, type TensorStore } from '../format/tensor-store.js';
import { shardLayout, shardSpecs, type ShardLayout, type ShardSpec } from './shard-spec.js';
import { sharedWeight } from './shared-stage.js';
import type { LayerWeights, LoadProgress, TransformerWeights } from './transformer-weights.js';

/** Which part of the model one rank runs. */
export interface StagePlan {
  readonly tp: number;
  readonly tpRank: number;
  /** Half-open layer range of this rank's pipeline stage. */
  readonly startLayer: number;
  readonly endLayer: number;
  /** A shared stage's overlap (shard-spec.ts shardLayout); 0 or absent: a fixed split. */
  readonly overlap?: number;
}

export interface StageWeights {
  readonly layout: ShardLayout;
  /** Layers outside [startLayer, endLayer) are holes; embedding/output are this rank's vocab rows or ABSENT. */
  readonly transformer: TransformerWeights;
}

/** A weight this rank does not hold. */
export const ABSENT: Weight = Object.freeze({ dtype: 'f32', shape: [0] }) as Weight;

/**
 * Where a rank's slices come from: the store itself, or (re-sharding a live
 * mesh) the bytes the rank already holds plus only the ranges it lacks
 * (src/cluster/held-shards.ts).
 */
export type SliceReader = Pick<TensorStore, 'readRows' | 'readColumns'>;

export function loadStageWeights(store: TensorStore, config: ModelConfig, backend: Backend, plan: StagePlan, onProgress?: LoadProgress, slices: SliceReader = store): StageWeights {
  const dtypeOf = (name: string): DType => store.get(name)?.dtype ?? 'f32';
  const layout = shardLayout(config, plan.tp, plan.tpRank, {
    attentionOutput: dtypeOf(`blk.${plan.startLayer}.attn_output.weight`),
    down: dtypeOf(`blk.${plan.startLayer}.ffn_down.weight`),
  }, plan.overlap ?? 0);
  const reader = new ShardReader(store, slices, backend, shardSpecs(config, layout), layout.shared !== undefined, onProgress);
  const { hiddenSize, vocabSize } = config;
  const first = plan.startLayer === 0;
  const last = plan.endLayer === config.numLayers;
  const tokenEmbedding = first || (last && config.tiedEmbeddings) ? reader.load('token_embd.weight', [vocabSize, hiddenSize]) : ABSENT;
  const layers: LayerWeights[] = new Array<LayerWeights>(config.numLayers);
  for (let layer = plan.startLayer; layer < plan.endLayer; layer++) layers[layer] = loadLayer(reader, config, layer);
  const output = !last ? ABSENT : config.tiedEmbeddings ? tokenEmbedding : reader.load('output.weight', [vocabSize, hiddenSize]);
  const outputNorm = last ? reader.load('output_norm.weight', [hiddenSize]) : ABSENT;
  const ropeFactors = store.get('rope_freqs.weight') ? reader.floats('rope_freqs.weight') : undefined;
  return { layout, transformer: { tokenEmbedding, layers, outputNorm, output, ropeFactors } };
}

function loadLayer(reader: ShardReader, config: ModelConfig, layer: number): LayerWeights {
  const load = (suffix: string, shape: number[]): Weight => reader.load(`blk.${layer}.${suffix}`, shape, suffix);
  const hidden = config.hiddenSize;
  const queryRows = config.numHeads * config.headDim;
  const kvRows = config.numKvHeads * config.headDim;
  const inter = config.intermediateSize;
  return {
    attentionNorm: load('attn_norm.weight', [hidden]),
    query: load('attn_q.weight', [queryRows, hidden]),
    key: load('attn_k.weight', [kvRows, hidden]),
    value: load('attn_v.weight', [kvRows, hidden]),
    attentionOutput: load('attn_output.weight', [hidden, queryRows]),
    queryBias: config.qkvBias ? load('attn_q.bias', [queryRows]) : undefined,
    keyBias: config.qkvBias ? load('attn_k.bias', [kvRows]) : undefined,
    valueBias: config.qkvBias ? load('attn_v.bias', [kvRows]) : undefined,
    queryNorm: config.qkNorm ? load('attn_q_norm.weight', [config.headDim]) : undefined,
    keyNorm: config.qkNorm ? load('attn_k_norm.weight', [config.headDim]) : undefined,
    feedForwardNorm: load('ffn_norm.weight', [hidden]),
    // MoE layers hold experts instead (moe-stage.ts places them on ranks and loads them).
    ...(config.moe
      ? {}
      : {
          feedForward: {
            gate: load('ffn_gate.weight', [inter, hidden]),
            up: load('ffn_up.weight', [inter, hidden]),
            down: load('ffn_down.weight', [hidden, inter]),
          },
        }),
  };
}

class ShardReader {
  private loadedBytes = 0;

  constructor(
    private readonly store: TensorStore,
    private readonly slices: SliceReader,
    private readonly backend: Backend,
    private readonly specs: Record<string, ShardSpec>,
    /** A shared stage: matrices come as SharedWeights (their held rows and where those start). */
    private readonly shared: boolean,
    private readonly onProgress?: LoadProgress,
  ) {}

  /** The slice of `name` its spec (looked up by `specName`, default the name) gives this rank. */
  load(name: string, fullShape: number[], specName = name): Weight {
    const info = this.store.get(name);
    if (!info) throw new TesseraError('TESSERA_ERR_MISSING_TENSOR', `the model has no tensor ${name}; the file is incomplete or not a supported architecture`);
    if (info.shape.length !== fullShape.length || info.shape.some((size, i) => size !== fullShape[i])) {
      throw new TesseraError('TESSERA_ERR_BAD_FORMAT', `tensor ${name} has shape [${info.shape.join(', ')}] but the model config implies [${fullShape.join(', ')}]`);
    }
    const spec = this.specs[specName] ?? { kind: 'replicated', start: 0, end: 0 };
    // A shared stage's rank may hold none of a matrix (k, v past its run): an empty held part.
    if (this.shared && spec.kind === 'column' && spec.start === spec.end) return sharedWeight(ABSENT, spec.start, fullShape);
    const { bytes, shape } = this.read(name, info.shape, spec);
    this.loadedBytes += bytes.byteLength;
    this.onProgress?.(this.loadedBytes, this.loadedBytes);
    const weight = this.backend.loadWeight(info.dtype, shape, bytes);
    return this.shared && spec.kind === 'column' ? sharedWeight(weight, spec.start, fullShape) : weight;
  }

  /** A small float32 tensor every rank keeps whole (rope_freqs). */
  floats(name: string): Float32Array {
    const info = this.store.get(name)!;
    const weight = this.backend.loadWeight(info.dtype, info.shape, this.slices.readRows(name, 0, matrixShape(info.shape).rows));
    return this.backend.readRows(weight, 0, 1);
  }

  private read(name: string, shape: readonly number[], spec: ShardSpec): { bytes: Uint8Array; shape: number[] } {
    const { rows, cols } = matrixShape(shape);
    const width = spec.end - spec.start;
    if (spec.kind === 'replicated') return { bytes: this.slices.readRows(name, 0, rows), shape: [...shape] };
    if (spec.kind === 'row' || shape.length === 1) return { bytes: this.columns(name, spec), shape: shape.length === 1 ? [width] : [rows, width] };
    return { bytes: this.slices.readRows(name, spec.start, spec.end), shape: [width, cols] };
  }

  private columns(name: string, spec: ShardSpec): Uint8Array {
    if (!this.slices.readColumns) {
      throw new TesseraError('TESSERA_ERR_UNSUPPORTED_ARCH', `this ${this.store.format} store cannot read column slices, so ${name} cannot be split; run with --tp 1`);
    }
    return this.slices.readColumns(name, spec.start, spec.end);
  }
}
