/**
 * What a synthetic model is: a preset's shapes under a chosen architecture,
 * as a ModelConfig, plus its vocabulary and the list of tensors it holds.
 */
import { TesseraError } from '../core/errors.js';
import type { ModelConfig } from '../core/model-config.js';
import { getPreset, SYNTH_ARCHS, vocabularyStyleOf, type SynthArch, type SynthPreset } from './presets.js';

export interface SynthTensorSpec {
  /** Canonical name. */
  name: string;
  /** Row-major, outermost first. */
  shape: number[];
  /** Matrices take the chosen dtype; norms, biases and rope factors stay f32. */
  isMatrix: boolean;
}

/** The ModelConfig a synthesized model describes (RoPE style as Hugging Face / GGUF qwen store it). */
export function synthConfig(presetName: string, arch: SynthArch, layers?: number): ModelConfig {
  const preset = getPreset(presetName);
  if (!SYNTH_ARCHS.includes(arch)) {
    throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `unknown architecture "${String(arch)}"; choose one of: ${SYNTH_ARCHS.join(', ')}`);
  }
  const numLayers = layers ?? preset.numLayers;
  if (!Number.isInteger(numLayers) || numLayers < 1) {
    throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `--layers must be a whole number ≥ 1, got ${String(layers)}`);
  }
  return {
    architecture: arch,
    vocabSize: preset.vocabSize,
    hiddenSize: preset.hiddenSize,
    intermediateSize: preset.intermediateSize,
    numLayers,
    numHeads: preset.numHeads,
    numKvHeads: preset.numKvHeads,
    headDim: preset.headDim,
    ropeDims: preset.headDim,
    ropeTheta: preset.ropeTheta,
    ropeStyle: 'halves',
    ...(preset.ropeScaling ? { ropeScaling: { ...preset.ropeScaling } } : {}),
    rmsNormEps: preset.rmsNormEps,
    contextLength: preset.contextLength,
    tiedEmbeddings: preset.tiedEmbeddings,
    qkvBias: arch === 'qwen2',
    qkNorm: arch === 'qwen3',
    eosTokenIds: [],
  };
}

export function presetAndStyle(presetName: string, arch: SynthArch): { preset: SynthPreset; style: ReturnType<typeof vocabularyStyleOf> } {
  const preset = getPreset(presetName);
  return { preset, style: vocabularyStyleOf(preset, arch) };
}

/** Every tensor of the model, in GGUF file order (HF files use the same set, renamed). */
export function synthTensorSpecs(config: ModelConfig): SynthTensorSpec[] {
  const { hiddenSize: hidden, intermediateSize: ffn, numHeads, numKvHeads, headDim } = config;
  const specs: SynthTensorSpec[] = [{ name: 'token_embd.weight', shape: [config.vocabSize, hidden], isMatrix: true }];
  if (config.ropeScaling) specs.push({ name: 'rope_freqs.weight', shape: [headDim / 2], isMatrix: false });
  for (let layer = 0; layer < config.numLayers; layer++) {
    const blk = (suffix: string, shape: number[], isMatrix: boolean): void => {
      specs.push({ name: `blk.${layer}.${suffix}`, shape, isMatrix });
    };
    blk('attn_norm.weight', [hidden], false);
    blk('attn_q.weight', [numHeads * headDim, hidden], true);
    blk('attn_k.weight', [numKvHeads * headDim, hidden], true);
    blk('attn_v.weight', [numKvHeads * headDim, hidden], true);
    if (config.qkvBias) {
      blk('attn_q.bias', [numHeads * headDim], false);
      blk('attn_k.bias', [numKvHeads * headDim], false);
      blk('attn_v.bias', [numKvHeads * headDim], false);
    }
    if (config.qkNorm) {
      blk('attn_q_norm.weight', [headDim], false);
      blk('attn_k_norm.weight', [headDim], false);
    }
    blk('attn_output.weight', [hidden, numHeads * headDim], true);
    blk('ffn_norm.weight', [hidden], false);
    blk('ffn_gate.weight', [ffn, hidden], true);
    blk('ffn_up.weight', [ffn, hidden], true);
    blk('ffn_down.weight', [hidden, ffn], true);
  }
  specs.push({ name: 'output_norm.weight', shape: [hidden], isMatrix: false });
  if (!config.tiedEmbeddings) specs.push({ name: 'output.weight', shape: [config.vocabSize, hidden], isMatrix: true });
  return specs;
}
