/**
 * Bytes of weights one rank holds, per pipeline stage: attention and dense
 * feed-forward split by tensor parallelism, experts split over tp (spread
 * over ep groups of whole experts, each cut tp/ep ways), embedding and LM head
 * vocab-parallel on the first and last stage.
 */
import {
  attentionParameterGroups,
  swigluParameterGroups,
  type ModelShape,
  type ParameterGroup,
} from './model-shape.js';
import type { Layout, Stage } from './layout.js';
import { weightBytes, type TensorRole, type WeightDtype } from './precision.js';

export function groupBytes(groups: readonly ParameterGroup[], dtype: WeightDtype): number {
  return groups.reduce((sum, group) => sum + group.parameters * weightBytes(dtype, group.role), 0);
}

/** Per layer, one rank: attention projections. */
export function attentionBytes(shape: ModelShape, dtype: WeightDtype, tp: number): number {
  return groupBytes(attentionParameterGroups(shape), dtype) / tp;
}

/** Per layer, one rank: a SwiGLU of intermediate size `size`. */
export function swigluBytes(shape: ModelShape, size: number, dtype: WeightDtype, tp: number): number {
  return groupBytes(swigluParameterGroups(shape.hiddenSize, size), dtype) / tp;
}

/** One routed expert's bytes on one rank that holds a slice of it (tp / ep ways). */
export function expertSliceBytes(shape: ModelShape, dtype: WeightDtype, layout: Layout): number {
  if (!shape.moe) return 0;
  return swigluBytes(shape, shape.moe.expertIntermediateSize, dtype, layout.tp / layout.ep);
}

/** Experts of one layer on one rank. */
export function expertsPerRank(shape: ModelShape, layout: Layout): number {
  return shape.moe ? shape.moe.numExperts / layout.ep : 0;
}

export function vocabularyBytes(shape: ModelShape, dtype: WeightDtype, role: TensorRole, tp: number): number {
  return (shape.vocabSize * shape.hiddenSize * weightBytes(dtype, role)) / tp;
}

/** Weights (bytes) one rank of `stage` holds. */
export function stageWeightBytes(shape: ModelShape, stage: Stage, dtype: WeightDtype, layout: Layout): number {
  const tp = layout.tp;
  const denseLayers = stage.layers - stage.moeLayers;
  let bytes = stage.layers * attentionBytes(shape, dtype, tp) + denseLayers * swigluBytes(shape, shape.intermediateSize, dtype, tp);
  if (shape.moe && stage.moeLayers > 0) {
    const shared = shape.moe.sharedIntermediateSize > 0 ? swigluBytes(shape, shape.moe.sharedIntermediateSize, dtype, tp) : 0;
    const experts = expertsPerRank(shape, layout) * expertSliceBytes(shape, dtype, layout);
    bytes += stage.moeLayers * (shared + experts);
  }
  if (stage.hasEmbedding) bytes += vocabularyBytes(shape, dtype, 'embedding', tp);
  // A tied head reuses the embedding, unless the embedding sits on another stage.
  if (stage.hasHead && (!shape.tiedEmbeddings || !stage.hasEmbedding)) bytes += vocabularyBytes(shape, dtype, 'head', tp);
  return bytes;
}
