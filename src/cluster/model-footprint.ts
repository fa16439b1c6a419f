/**
 * What placement needs to know of a model, as plain numbers: its layers'
 * stored bytes, the bytes of its two ends, and the tensor-parallel degrees it
 * can take. Made once from the config and the tensor list (no weight read).
 */
import { byteSize } from '../core/dtype.js';
import type { ModelConfig } from '../core/model-config.js';
import type { TensorInfo } from '../format/tensor-store.js';
import { checkExpertParallel } from '../model/moe-stage.js';
import { checkTensorParallel } from '../model/shard-spec.js';
import { openModelFiles } from '../engine/model-files.js';
import { stageLayerRanges } from '../parallel/mesh.js';

export interface ModelFootprint {
  readonly numLayers: number;
  /** [numLayers] stored bytes of each layer's tensors. */
  readonly layerBytes: readonly number[];
  /** The token embedding (stage 0). */
  readonly embeddingBytes: number;
  /** The LM head and final norm (last stage); with tied embeddings, the embedding again. */
  readonly outputBytes: number;
  /** Tensor-parallel degrees the model can be split by (powers of two), ascending. */
  readonly tpDegrees: readonly number[];
}

/** Refuses a starting shape the model cannot take, and reads the model's footprint (its tensor list, no weights). */
export function meshFootprint(config: ModelConfig, options: { modelPath: string; tokenizerPath?: string; tp: number; pp: number; ep?: number; ppLayers?: number[] }): ModelFootprint {
  checkTensorParallel(config, options.tp);
  checkExpertParallel(config, options.tp, options.ep ?? 1);
  stageLayerRanges(config.numLayers, options.pp, options.ppLayers);
  const files = openModelFiles(options.modelPath, { tokenizerPath: options.tokenizerPath });
  try {
    return footprintOf(config, files.store.list(), options.ep ?? 1);
  } finally {
    files.store.close();
  }
}

export function footprintOf(config: ModelConfig, tensors: readonly TensorInfo[], ep = 1): ModelFootprint {
  const bytesOf = (info: TensorInfo | undefined): number => (info ? byteSize(info.dtype, info.shape.reduce((a, b) => a * b, 1)) : 0);
  const byName = new Map(tensors.map((info) => [info.name, info]));
  const layerBytes = new Array<number>(config.numLayers).fill(0);
  for (const info of tensors) {
    const match = /^blk\.(\d+)\./.exec(info.name);
    if (match && Number(match[1]) < config.numLayers) layerBytes[Number(match[1])] += bytesOf(info);
  }
  const embeddingBytes = bytesOf(byName.get('token_embd.weight'));
  const head = config.tiedEmbeddings ? embeddingBytes : bytesOf(byName.get('output.weight'));
  return { numLayers: config.numLayers, layerBytes, embeddingBytes, outputBytes: head + bytesOf(byName.get('output_norm.weight')), tpDegrees: tpDegrees(config, ep) };
}

/** Stored bytes a rank of degree `tp` holds for the stage of layers [start, end) of a plan. */
export function stageBytes(model: ModelFootprint, tp: number, start: number, end: number): number {
  let bytes = 0;
  for (let layer = start; layer < end; layer++) bytes += model.layerBytes[layer];
  if (start === 0) bytes += model.embeddingBytes;
  if (end === model.numLayers) bytes += model.outputBytes;
  return bytes / tp;
}

export function modelBytes(model: ModelFootprint): number {
  return stageBytes(model, 1, 0, model.numLayers);
}

function tpDegrees(config: ModelConfig, ep: number): number[] {
  const degrees: number[] = [];
  for (let tp = 1; tp <= config.numHeads; tp *= 2) {
    try {
      checkTensorParallel(config, tp);
      if (ep > 1 && tp > 1) checkExpertParallel(config, tp, tp);
      degrees.push(tp);
    } catch {
      // not a degree this model splits by
    }
  }
  return degrees;
}
