/**
 * One normalized description of a decoder-only transformer, whatever file it
 * came from (GGUF metadata, config.json, llama2.c header).
 */
export type Architecture = 'llama' | 'mistral' | 'qwen2' | 'qwen3' | 'mixtral' | 'qwen2_moe' | 'qwen3_moe';

/**
 * How RoPE pairs the dimensions of a head:
 * - `adjacent`: (2i, 2i+1), as llama2.c and GGUF llama files (whose Q/K rows
 *   were permuted by the converter) expect;
 * - `halves`: (i, i + d/2), Hugging Face "rotate_half" and GGUF qwen2/qwen3.
 */
export type RopeStyle = 'adjacent' | 'halves';

export interface RopeScaling {
  type: 'llama3';
  factor: number;
  lowFreqFactor: number;
  highFreqFactor: number;
  originalContextLength: number;
}

export interface ModelConfig {
  architecture: Architecture;
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numLayers: number;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  /** Dimensions of each head that RoPE rotates (the rest pass through). */
  ropeDims: number;
  ropeTheta: number;
  ropeStyle: RopeStyle;
  ropeScaling?: RopeScaling;
  rmsNormEps: number;
  contextLength: number;
  tiedEmbeddings: boolean;
  /** Qwen2: q/k/v projections carry a bias. */
  qkvBias: boolean;
  /** Qwen3: RMSNorm over each head of q and k before RoPE. */
  qkNorm: boolean;
  bosTokenId?: number;
  eosTokenIds: number[];
  /** Mixture-of-experts feed-forward (Mixtral, Qwen2-MoE, Qwen3-MoE); absent for dense models. */
  moe?: MixtureOfExpertsConfig;
}

/**
 * The routed feed-forward of an MoE layer: a router (softmax over all
 * experts, then top-k) picks `numExpertsPerToken` of `numExperts` SwiGLU
 * experts per token; Qwen2-MoE adds a shared expert behind a sigmoid gate.
 * Which layers are MoE is decided by the tensors present (a layer with a
 * router is MoE, the others use the dense `intermediateSize`).
 */
export interface MixtureOfExpertsConfig {
  numExperts: number;
  numExpertsPerToken: number;
  /** Renormalise the top-k router weights to sum to 1 (Mixtral: always; Qwen: `norm_topk_prob`). */
  normTopKProb: boolean;
  /** Intermediate size of each routed expert. */
  expertIntermediateSize: number;
  /** Intermediate size of the shared expert (Qwen2-MoE); absent when there is none. */
  sharedExpertIntermediateSize?: number;
}
