/** KV-cache bytes per token on one rank, and how many tokens fit beside the weights. */
import { kvElementsPerToken, kvHeads, type ModelShape } from './model-shape.js';
import { kvBytes, type KvDtype } from './precision.js';
import type { Stage } from './layout.js';

/**
 * Tensor parallelism splits the KV heads; beyond their number they are
 * replicated. MLA's latent is one head, so every tp rank keeps all of it.
 */
export function kvSplit(shape: ModelShape, tp: number): number {
  return Math.min(tp, kvHeads(shape));
}

/** Bytes one token leaves in the cache of one rank of `stage`. */
export function kvBytesPerToken(shape: ModelShape, stage: Stage, dtype: KvDtype, tp: number): number {
  return (stage.layers * kvElementsPerToken(shape) * kvBytes(dtype)) / kvSplit(shape, tp);
}
