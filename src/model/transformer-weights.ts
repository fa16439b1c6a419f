/**
 * The weights of a Llama-family decoder, read from a TensorStore by canonical
 * name and handed to a backend, layer by layer.
 */
import type { Backend, Weight } from '../backend/backend.js';
import type { ModelConfig } from '../core/model-config.js';
import { byteSize } from '../core/dtype.js';
import { TesseraError } from '../core/errors.js';
import { matrixShape, type TensorInfo, type TensorStore } from '../format/tensor-store.js';
import type { DenseFeedForwardWeights } from './feed-forward.js';
import { isMixtureOfExpertsLayer, loadMixtureOfExperts, type MixtureOfExpertsWeights } from './moe-weights.js';

export interface LayerWeights {
  attentionNorm: Weight;
  /** [numHeads * headDim, hiddenSize] */
  query: Weight;
  /** [numKvHeads * headDim, hiddenSize] */
  key: Weight;
  /** [numKvHeads * headDim, hiddenSize] */
  value: Weight;
  /** [hiddenSize, numHeads * headDim] */
  attentionOutput: Weight;
  queryBias?: Weight;
  keyBias?: Weight;
  valueBias?: Weight;
  /** [headDim] */
  queryNorm?: Weight;
  /** [headDim] */
  keyNorm?: Weight;
  feedForwardNorm: Weight;
  /** Dense layers; absent on mixture-of-experts layers. */
  feedForward?: DenseFeedForwardWeights;
  /** Mixture-of-experts layers (those whose file has a router). */
  mixtureOfExperts?: MixtureOfExpertsWeights;
}

export interface TransformerWeights {
  /** [vocabSize, hiddenSize] */
  tokenEmbedding: Weight;
  layers: LayerWeights[];
  outputNorm: Weight;
  /** [vocabSize, hiddenSize]; the token embedding when tied. */
  output: Weight;
  /** [ropeDims / 2] per-pair divisors of Llama 3 GGUF files. */
  ropeFactors?: Float32Array;
}

export type LoadProgress = (loadedBytes: number, totalBytes: number) => void;

export function loadTransformerWeights(
  store: TensorStore,
  config: ModelConfig,
  backend: Backend,
  onProgress?: LoadProgress,
  /** Expert parallelism: the experts this rank holds (default all); the others are not read. */
  ownsExpert?: (expert: number) => boolean,
): TransformerWeights {
  const loader = new WeightLoader(store, backend, onProgress);
  const tokenEmbedding = loader.required('token_embd.weight', [config.vocabSize, config.hiddenSize]);
  const layers: LayerWeights[] = [];
  for (let layer = 0; layer < config.numLayers; layer++) layers.push(loadLayer(loader, config, layer, ownsExpert));
  const outputNorm = loader.required('output_norm.weight', [config.hiddenSize]);
  const output = config.tiedEmbeddings ? tokenEmbedding : loader.required('output.weight', [config.vocabSize, config.hiddenSize]);
  const factors = store.get('rope_freqs.weight') ? loader.floats('rope_freqs.weight') : undefined;
  return { tokenEmbedding, layers, outputNorm, output, ropeFactors: factors };
}

function loadLayer(loader: WeightLoader, config: ModelConfig, layer: number, ownsExpert?: (expert: number) => boolean): LayerWeights {
  const name = (suffix: string): string => `blk.${layer}.${suffix}`;
  const hidden = config.hiddenSize;
  const queryRows = config.numHeads * config.headDim;
  const kvRows = config.numKvHeads * config.headDim;
  return {
    attentionNorm: loader.required(name('attn_norm.weight'), [hidden]),
    query: loader.required(name('attn_q.weight'), [queryRows, hidden]),
    key: loader.required(name('attn_k.weight'), [kvRows, hidden]),
    value: loader.required(name('attn_v.weight'), [kvRows, hidden]),
    attentionOutput: loader.required(name('attn_output.weight'), [hidden, queryRows]),
    queryBias: config.qkvBias ? loader.required(name('attn_q.bias'), [queryRows]) : undefined,
    keyBias: config.qkvBias ? loader.required(name('attn_k.bias'), [kvRows]) : undefined,
    valueBias: config.qkvBias ? loader.required(name('attn_v.bias'), [kvRows]) : undefined,
    queryNorm: config.qkNorm ? loader.required(name('attn_q_norm.weight'), [config.headDim]) : undefined,
    keyNorm: config.qkNorm ? loader.required(name('attn_k_norm.weight'), [config.headDim]) : undefined,
    feedForwardNorm: loader.required(name('ffn_norm.weight'), [hidden]),
    ...feedForwardWeights(loader, config, layer, ownsExpert),
  };
}

/** The dense MLP, or the experts when the layer has a router. */
function feedForwardWeights(
  loader: WeightLoader,
  config: ModelConfig,
  layer: number,
  ownsExpert?: (expert: number) => boolean,
): Pick<LayerWeights, 'feedForward' | 'mixtureOfExperts'> {
  if (isMixtureOfExpertsLayer(loader, layer)) return { mixtureOfExperts: loadMixtureOfExperts(loader, config, layer, ownsExpert) };
  const name = (suffix: string): string => `blk.${layer}.${suffix}`;
  const hidden = config.hiddenSize;
  const inter = config.intermediateSize;
  return {
    feedForward: {
      gate: loader.required(name('ffn_gate.weight'), [inter, hidden]),
      up: loader.required(name('ffn_up.weight'), [inter, hidden]),
      down: loader.required(name('ffn_down.weight'), [hidden, inter]),
    },
  };
}

export class WeightLoader {
  private loadedBytes = 0;
  private readonly totalBytes: number;

  constructor(
    private readonly store: TensorStore,
    private readonly backend: Backend,
    private readonly onProgress?: LoadProgress,
  ) {
    this.totalBytes = store.list().reduce((sum, info) => sum + storedBytes(store, info.name), 0);
  }

  required(name: string, shape: number[]): Weight {
    const info = this.checked(name, shape);
    return this.load(name, info.shape, 0, matrixShape(info.shape).rows);
  }

  has(name: string): boolean {
    return this.store.get(name) !== undefined;
  }

  shapeOf(name: string): readonly number[] | undefined {
    return this.store.get(name)?.shape;
  }

  /**
   * Rows [rowStart, rowEnd) of a tensor of shape `fullShape` (seen as a
   * matrix) as a weight of `shape`: one expert of a packed expert tensor.
   * Reads only those bytes, so a rank loads only its own experts.
   */
  rowRange(name: string, fullShape: number[], rowStart: number, rowEnd: number, shape: number[]): Weight {
    this.checked(name, fullShape);
    return this.load(name, shape, rowStart, rowEnd);
  }

  private checked(name: string, shape: number[]): TensorInfo {
    const info = this.store.get(name);
    if (!info) {
      throw new TesseraError('TESSERA_ERR_MISSING_TENSOR', `the model has no tensor ${name}; the file is incomplete or not a supported architecture`);
    }
    const matches = info.shape.length === shape.length && info.shape.every((size, i) => size === shape[i]);
    if (!matches) {
      throw new TesseraError(
        'TESSERA_ERR_BAD_FORMAT',
        `tensor ${name} has shape [${info.shape.join(', ')}] but the model config implies [${shape.join(', ')}]`,
      );
    }
    return info;
  }

  private load(name: string, shape: readonly number[], rowStart: number, rowEnd: number): Weight {
    const info = this.store.get(name)!;
    // A backend that maps weights from the file (native) needs no copy through JavaScript.
    const range = this.backend.loadWeightFromFile ? this.store.fileRange?.(name, rowStart, rowEnd) : undefined;
    if (range && this.backend.loadWeightFromFile) {
      this.loadedBytes += byteSize(info.dtype, matrixShape(shape).rows * matrixShape(shape).cols);
      this.onProgress?.(this.loadedBytes, this.totalBytes);
      return this.backend.loadWeightFromFile(range.path, range.byteOffset, info.dtype, shape);
    }
    const bytes = this.store.readRows(name, rowStart, rowEnd);
    this.loadedBytes += bytes.byteLength;
    this.onProgress?.(this.loadedBytes, this.totalBytes);
    return this.backend.loadWeight(info.dtype, shape, bytes);
  }

  /** A small float32 tensor kept in JavaScript (e.g. rope_freqs). */
  floats(name: string): Float32Array {
    const info = this.store.get(name);
    if (!info) throw new TesseraError('TESSERA_ERR_MISSING_TENSOR', `the model has no tensor ${name}`);
    const weight = this.backend.loadWeight(info.dtype, info.shape, this.store.readRows(name, 0, matrixShape(info.shape).rows));
    return this.backend.readRows(weight, 0, 1);
  }
}

function storedBytes(store: TensorStore, name: string): number {
  const info = store.get(name);
  if (!info) return 0;
  const { rows, cols } = matrixShape(info.shape);
  return byteSize(info.dtype, rows * cols);
}
