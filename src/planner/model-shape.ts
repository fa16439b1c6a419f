/**
 * The shape of a decoder-only transformer as the cost model needs it: how many
 * parameters each layer holds and each token touches, how many KV-cache
 * elements a token leaves per layer, and how many FLOPs attention costs per
 * token per position attended. Norms and biases are left out (well under
 * 0.1% of any model here).
 */
import type { TensorRole } from './precision.js';

/** Grouped-query (or multi-head, when kv heads = heads) attention. */
export interface GqaAttention {
  readonly kind: 'gqa';
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
}

/** DeepSeek's multi-head latent attention: the cache holds one compressed latent and a shared RoPE key per token. */
export interface MlaAttention {
  readonly kind: 'mla';
  readonly numHeads: number;
  /** 0: queries are projected directly from the hidden state. */
  readonly qLoraRank: number;
  readonly kvLoraRank: number;
  readonly qkNopeHeadDim: number;
  readonly qkRopeHeadDim: number;
  readonly vHeadDim: number;
}

export interface MixtureOfExpertsShape {
  readonly numExperts: number;
  readonly numExpertsPerToken: number;
  readonly expertIntermediateSize: number;
  /** Intermediate size of the always-on shared expert(s), 0 when there are none. */
  readonly sharedIntermediateSize: number;
  /** The first layers that stay dense (DeepSeek-V3: 3), with the model's `intermediateSize`. */
  readonly denseLayers: number;
}

export interface ModelShape {
  readonly name: string;
  readonly numLayers: number;
  readonly hiddenSize: number;
  /** The dense SwiGLU's intermediate size (dense layers of an MoE model use it too). */
  readonly intermediateSize: number;
  readonly vocabSize: number;
  readonly tiedEmbeddings: boolean;
  readonly contextLength: number;
  readonly attention: GqaAttention | MlaAttention;
  readonly moe?: MixtureOfExpertsShape;
}

/** Parameters of one tensor group, with the role that decides its bytes under mixed formats. */
export interface ParameterGroup {
  readonly role: TensorRole;
  readonly parameters: number;
}

/** The attention projections of one layer. */
export function attentionParameterGroups(shape: ModelShape): ParameterGroup[] {
  const hidden = shape.hiddenSize;
  const a = shape.attention;
  if (a.kind === 'gqa') {
    return [
      { role: 'attention-qkv', parameters: hidden * a.numHeads * a.headDim + hidden * a.numKvHeads * a.headDim },
      { role: 'attention-v', parameters: hidden * a.numKvHeads * a.headDim },
      { role: 'attention-output', parameters: a.numHeads * a.headDim * hidden },
    ];
  }
  const qHead = a.qkNopeHeadDim + a.qkRopeHeadDim;
  const query = a.qLoraRank > 0 ? hidden * a.qLoraRank + a.qLoraRank * a.numHeads * qHead : hidden * a.numHeads * qHead;
  return [
    { role: 'attention-qkv', parameters: query + hidden * (a.kvLoraRank + a.qkRopeHeadDim) + a.kvLoraRank * a.numHeads * a.qkNopeHeadDim },
    { role: 'attention-v', parameters: a.kvLoraRank * a.numHeads * a.vHeadDim },
    { role: 'attention-output', parameters: a.numHeads * a.vHeadDim * hidden },
  ];
}

/** A SwiGLU of intermediate size `size`: gate and up (up role), down. */
export function swigluParameterGroups(hidden: number, size: number): ParameterGroup[] {
  return [
    { role: 'ffn-up', parameters: 2 * hidden * size },
    { role: 'ffn-down', parameters: hidden * size },
  ];
}

export function sumParameters(groups: readonly ParameterGroup[]): number {
  return groups.reduce((sum, group) => sum + group.parameters, 0);
}

/** Whether layer `index` runs the routed experts. */
export function isMoeLayer(shape: ModelShape, index: number): boolean {
  return shape.moe !== undefined && index >= shape.moe.denseLayers;
}

export function moeLayerCount(shape: ModelShape): number {
  return shape.moe ? shape.numLayers - shape.moe.denseLayers : 0;
}

/** KV-cache elements one token leaves in one layer (keys and values, or MLA's latent and RoPE key). */
export function kvElementsPerToken(shape: ModelShape): number {
  const a = shape.attention;
  return a.kind === 'gqa' ? 2 * a.numKvHeads * a.headDim : a.kvLoraRank + a.qkRopeHeadDim;
}

/**
 * Attention FLOPs per token per attended position in one layer: scores and
 * the weighted sum of values, 2 FLOPs per multiply-add. MLA is priced in its
 * absorbed form (queries meet the latent directly), as serving engines run it.
 */
export function attentionFlopsPerPosition(shape: ModelShape): number {
  const a = shape.attention;
  if (a.kind === 'gqa') return 4 * a.numHeads * a.headDim;
  return 2 * a.numHeads * (a.kvLoraRank + a.qkRopeHeadDim) + 2 * a.numHeads * a.kvLoraRank;
}

/** Query heads, which tensor parallelism splits. */
export function queryHeads(shape: ModelShape): number {
  return shape.attention.numHeads;
}

/** Heads of the KV cache that tensor parallelism can split (MLA's latent is one shared head, so it is replicated). */
export function kvHeads(shape: ModelShape): number {
  return shape.attention.kind === 'gqa' ? shape.attention.numKvHeads : 1;
}

export interface ParameterCounts {
  readonly total: number;
  /** Parameters one token multiplies by (routed experts counted k of E). */
  readonly activePerToken: number;
}

/** Total and per-token parameters, embedding and LM head included. */
export function parameterCounts(shape: ModelShape): ParameterCounts {
  const hidden = shape.hiddenSize;
  const attention = sumParameters(attentionParameterGroups(shape)) * shape.numLayers;
  const embedding = shape.vocabSize * hidden;
  const head = shape.tiedEmbeddings ? 0 : embedding;
  const dense = sumParameters(swigluParameterGroups(hidden, shape.intermediateSize));
  if (!shape.moe) {
    const total = embedding + head + attention + dense * shape.numLayers;
    return { total, activePerToken: total };
  }
  const moe = shape.moe;
  const expert = sumParameters(swigluParameterGroups(hidden, moe.expertIntermediateSize));
  const shared = moe.sharedIntermediateSize > 0 ? sumParameters(swigluParameterGroups(hidden, moe.sharedIntermediateSize)) : 0;
  const router = hidden * moe.numExperts;
  const moeLayers = moeLayerCount(shape);
  const common = embedding + head + attention + dense * moe.denseLayers + (shared + router) * moeLayers;
  return {
    total: common + expert * moe.numExperts * moeLayers,
    activePerToken: common + expert * moe.numExpertsPerToken * moeLayers,
  };
}
