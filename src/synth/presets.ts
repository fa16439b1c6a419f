/**
 * Shapes of real models (and tiny ones for tests) that `tessera synth` fills
 * with random weights. A preset holds shapes only; the architecture (which
 * decides biases, q/k norms and RoPE layout) is chosen separately.
 */
import { TesseraError } from '../core/errors.js';
import type { RopeScaling } from '../core/model-config.js';

export type SynthArch = 'llama' | 'qwen2' | 'qwen3' | 'mixtral' | 'qwen2_moe' | 'qwen3_moe';
export const SYNTH_ARCHS: readonly SynthArch[] = ['llama', 'qwen2', 'qwen3', 'mixtral', 'qwen2_moe', 'qwen3_moe'];
/** Architectures whose feed-forward is a mixture of experts (they need a preset with `moe`). */
export const SYNTH_MOE_ARCHS: readonly SynthArch[] = ['mixtral', 'qwen2_moe', 'qwen3_moe'];

/** The experts of an MoE preset. */
export interface SynthMixtureOfExperts {
  readonly numExperts: number;
  readonly numExpertsPerToken: number;
  readonly expertIntermediateSize: number;
  /** Qwen2-MoE shared expert; the dense intermediate size when absent. */
  readonly sharedExpertIntermediateSize?: number;
  /** Qwen3-MoE's norm_topk_prob (Mixtral always renormalises, Qwen2-MoE as llama.cpp: never). */
  readonly normTopKProb: boolean;
}

/** q4_k_m: llama.cpp's mix (q4_k matrices; q6_k for ffn_down, attn_v and the output head). */
export type SynthDType = 'f32' | 'f16' | 'q8_0' | 'q4_0' | 'q4_k_m';
export const SYNTH_DTYPES: readonly SynthDType[] = ['f32', 'f16', 'q8_0', 'q4_0', 'q4_k_m'];

/**
 * - `sentencepiece`: llama/TinyLlama style ('llama' tokenizer model, byte fallback);
 * - `llama-bpe`: Llama 3 byte-level BPE ('gpt2' model, pre 'llama-bpe');
 * - `qwen2`: Qwen 2/2.5/3 byte-level BPE ('gpt2' model, pre 'qwen2').
 */
export type VocabularyStyle = 'sentencepiece' | 'llama-bpe' | 'qwen2';

export interface SynthPreset {
  readonly name: string;
  readonly description: string;
  readonly defaultArch: SynthArch;
  /** `undefined`: follows the architecture (llama → sentencepiece, qwen → qwen2). */
  readonly vocabulary?: VocabularyStyle;
  readonly vocabSize: number;
  readonly hiddenSize: number;
  readonly intermediateSize: number;
  readonly numLayers: number;
  readonly numHeads: number;
  readonly numKvHeads: number;
  readonly headDim: number;
  readonly contextLength: number;
  readonly ropeTheta: number;
  readonly ropeScaling?: RopeScaling;
  readonly rmsNormEps: number;
  readonly tiedEmbeddings: boolean;
  /** Experts, for the MoE architectures. */
  readonly moe?: SynthMixtureOfExperts;
}

const PRESET_LIST: readonly SynthPreset[] = [
  {
    name: 'tinyllama-1.1b',
    description: 'TinyLlama 1.1B shapes, SentencePiece vocabulary',
    defaultArch: 'llama',
    vocabulary: 'sentencepiece',
    vocabSize: 32000,
    hiddenSize: 2048,
    intermediateSize: 5632,
    numLayers: 22,
    numHeads: 32,
    numKvHeads: 4,
    headDim: 64,
    contextLength: 2048,
    ropeTheta: 10000,
    rmsNormEps: 1e-5,
    tiedEmbeddings: false,
  },
  {
    name: 'llama-3.2-1b',
    description: 'Llama 3.2 1B shapes, llama3 RoPE scaling, byte-level BPE vocabulary',
    defaultArch: 'llama',
    vocabulary: 'llama-bpe',
    vocabSize: 128256,
    hiddenSize: 2048,
    intermediateSize: 8192,
    numLayers: 16,
    numHeads: 32,
    numKvHeads: 8,
    headDim: 64,
    contextLength: 131072,
    ropeTheta: 500000,
    ropeScaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalContextLength: 8192 },
    rmsNormEps: 1e-5,
    tiedEmbeddings: true,
  },
  {
    name: 'llama-3.1-8b',
    description: 'Llama 3.1 8B shapes, llama3 RoPE scaling, byte-level BPE vocabulary',
    defaultArch: 'llama',
    vocabulary: 'llama-bpe',
    vocabSize: 128256,
    hiddenSize: 4096,
    intermediateSize: 14336,
    numLayers: 32,
    numHeads: 32,
    numKvHeads: 8,
    headDim: 128,
    contextLength: 131072,
    ropeTheta: 500000,
    ropeScaling: { type: 'llama3', factor: 8, lowFreqFactor: 1, highFreqFactor: 4, originalContextLength: 8192 },
    rmsNormEps: 1e-5,
    tiedEmbeddings: false,
  },
  {
    name: 'qwen2.5-0.5b',
    description: 'Qwen2.5 0.5B shapes, qwen2 byte-level BPE vocabulary',
    defaultArch: 'qwen2',
    vocabulary: 'qwen2',
    vocabSize: 151936,
    hiddenSize: 896,
    intermediateSize: 4864,
    numLayers: 24,
    numHeads: 14,
    numKvHeads: 2,
    headDim: 64,
    contextLength: 32768,
    ropeTheta: 1e6,
    rmsNormEps: 1e-6,
    tiedEmbeddings: true,
  },
  {
    name: 'qwen3-0.6b',
    description: 'Qwen3 0.6B shapes (head_dim 128 ≠ hidden/heads), qwen2 byte-level BPE vocabulary',
    defaultArch: 'qwen3',
    vocabulary: 'qwen2',
    vocabSize: 151936,
    hiddenSize: 1024,
    intermediateSize: 3072,
    numLayers: 28,
    numHeads: 16,
    numKvHeads: 8,
    headDim: 128,
    contextLength: 40960,
    ropeTheta: 1e6,
    rmsNormEps: 1e-6,
    tiedEmbeddings: true,
  },
  {
    name: 'tiny',
    description: 'test model: hidden 128, 2 layers, GQA 4/2, vocabulary 512 in the architecture\'s style',
    defaultArch: 'llama',
    vocabSize: 512,
    hiddenSize: 128,
    intermediateSize: 256,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 32,
    contextLength: 512,
    ropeTheta: 10000,
    rmsNormEps: 1e-5,
    tiedEmbeddings: false,
  },
  {
    name: 'tiny-wide-head',
    description: 'test model: hidden 128, head_dim 64 ≠ hidden/heads, 2 layers, GQA 4/2, tied, vocabulary 768',
    defaultArch: 'qwen3',
    vocabSize: 768,
    hiddenSize: 128,
    intermediateSize: 320,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 64,
    contextLength: 1024,
    ropeTheta: 1e6,
    rmsNormEps: 1e-6,
    tiedEmbeddings: true,
  },
  {
    name: 'tiny-llama3',
    description: 'test model: Llama 3 style (llama3 RoPE scaling, tied, byte-level BPE), hidden 128, 2 layers',
    defaultArch: 'llama',
    vocabulary: 'llama-bpe',
    vocabSize: 1024,
    hiddenSize: 128,
    intermediateSize: 256,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 32,
    contextLength: 4096,
    ropeTheta: 500000,
    ropeScaling: { type: 'llama3', factor: 32, lowFreqFactor: 1, highFreqFactor: 4, originalContextLength: 64 },
    rmsNormEps: 1e-5,
    tiedEmbeddings: true,
  },
  {
    name: 'small',
    description: 'test model: hidden 256, 4 layers, GQA 8/2, vocabulary 2000',
    defaultArch: 'llama',
    vocabSize: 2000,
    hiddenSize: 256,
    intermediateSize: 768,
    numLayers: 4,
    numHeads: 8,
    numKvHeads: 2,
    headDim: 32,
    contextLength: 2048,
    ropeTheta: 10000,
    rmsNormEps: 1e-5,
    tiedEmbeddings: false,
  },
  {
    name: 'mixtral-8x7b',
    description: 'Mixtral 8x7B shapes (8 experts, top-2), SentencePiece vocabulary',
    defaultArch: 'mixtral',
    vocabulary: 'sentencepiece',
    vocabSize: 32000,
    hiddenSize: 4096,
    intermediateSize: 14336,
    numLayers: 32,
    numHeads: 32,
    numKvHeads: 8,
    headDim: 128,
    contextLength: 32768,
    ropeTheta: 1e6,
    rmsNormEps: 1e-5,
    tiedEmbeddings: false,
    moe: { numExperts: 8, numExpertsPerToken: 2, expertIntermediateSize: 14336, normTopKProb: true },
  },
  {
    name: 'qwen3-30b-a3b',
    description: 'Qwen3-30B-A3B shapes (128 experts, top-8, expert ff 768), qwen2 byte-level BPE vocabulary',
    defaultArch: 'qwen3_moe',
    vocabulary: 'qwen2',
    vocabSize: 151936,
    hiddenSize: 2048,
    intermediateSize: 6144,
    numLayers: 48,
    numHeads: 32,
    numKvHeads: 4,
    headDim: 128,
    contextLength: 40960,
    ropeTheta: 1e6,
    rmsNormEps: 1e-6,
    tiedEmbeddings: false,
    moe: { numExperts: 128, numExpertsPerToken: 8, expertIntermediateSize: 768, normTopKProb: true },
  },
  {
    name: 'tiny-mixtral',
    description: 'test model: Mixtral style, hidden 128, 2 layers, 4 experts top-2 (ff 128), SentencePiece vocabulary 512',
    defaultArch: 'mixtral',
    vocabulary: 'sentencepiece',
    vocabSize: 512,
    hiddenSize: 128,
    intermediateSize: 128,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 32,
    contextLength: 512,
    ropeTheta: 1e6,
    rmsNormEps: 1e-5,
    tiedEmbeddings: false,
    moe: { numExperts: 4, numExpertsPerToken: 2, expertIntermediateSize: 128, normTopKProb: true },
  },
  {
    name: 'tiny-qwen3-moe',
    description: 'test model: Qwen3-MoE style, hidden 128, head_dim 64 ≠ hidden/heads, 2 layers, 8 experts top-2 (ff 96), vocabulary 512',
    defaultArch: 'qwen3_moe',
    vocabulary: 'qwen2',
    vocabSize: 512,
    hiddenSize: 128,
    intermediateSize: 256,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 64,
    contextLength: 1024,
    ropeTheta: 1e6,
    rmsNormEps: 1e-6,
    tiedEmbeddings: false,
    moe: { numExperts: 8, numExpertsPerToken: 2, expertIntermediateSize: 96, normTopKProb: true },
  },
  {
    name: 'small-mixtral',
    description: 'benchmark model: Mixtral style, hidden 512, 4 layers, GQA 8/2, 8 experts top-2 (ff 1024), SentencePiece vocabulary 2000',
    defaultArch: 'mixtral',
    vocabulary: 'sentencepiece',
    vocabSize: 2000,
    hiddenSize: 512,
    intermediateSize: 1024,
    numLayers: 4,
    numHeads: 8,
    numKvHeads: 2,
    headDim: 64,
    contextLength: 2048,
    ropeTheta: 1e6,
    rmsNormEps: 1e-5,
    tiedEmbeddings: false,
    moe: { numExperts: 8, numExpertsPerToken: 2, expertIntermediateSize: 1024, normTopKProb: true },
  },
  {
    name: 'tiny-qwen2-moe',
    description: 'test model: Qwen2-MoE style (q/k/v bias, shared expert 192 behind a sigmoid gate), hidden 128, 2 layers, 4 experts top-2 (ff 64), vocabulary 512',
    defaultArch: 'qwen2_moe',
    vocabulary: 'qwen2',
    vocabSize: 512,
    hiddenSize: 128,
    intermediateSize: 256,
    numLayers: 2,
    numHeads: 4,
    numKvHeads: 2,
    headDim: 32,
    contextLength: 1024,
    ropeTheta: 1e6,
    rmsNormEps: 1e-6,
    tiedEmbeddings: false,
    moe: { numExperts: 4, numExpertsPerToken: 2, expertIntermediateSize: 64, sharedExpertIntermediateSize: 192, normTopKProb: false },
  },
];

export const SYNTH_PRESETS: ReadonlyMap<string, SynthPreset> = new Map(PRESET_LIST.map((preset) => [preset.name, preset]));

export function presetNames(): string[] {
  return PRESET_LIST.map((preset) => preset.name);
}

export function getPreset(name: string): SynthPreset {
  const preset = SYNTH_PRESETS.get(name);
  if (!preset) {
    throw new TesseraError('TESSERA_ERR_UNKNOWN_PRESET', `unknown preset "${name}"; choose one of: ${presetNames().join(', ')}`);
  }
  return preset;
}

export function vocabularyStyleOf(preset: SynthPreset, arch: SynthArch): VocabularyStyle {
  return preset.vocabulary ?? (arch === 'llama' || arch === 'mixtral' ? 'sentencepiece' : 'qwen2');
}
