/**
 * What a synthetic model is: a preset's shapes under a chosen architecture,
 * as a ModelConfig, plus its vocabulary and the list of tensors it holds.
 */
import { TesseraError } from '../core/errors.js';
import type { MixtureOfExpertsConfig, ModelConfig } from '../core/model-config.js';
import { getPreset, SYNTH_ARCHS, SYNTH_MOE_ARCHS, vocabularyStyleOf, type SynthArch, type SynthPreset } from './presets.js';

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
    qkvBias: arch === 'qwen2' || arch === 'qwen2_moe',
    qkNorm: arch === 'qwen3' || arch === 'qwen3_moe',
    eosTokenIds: [],
    ...moeOf(preset, arch),
  };
}

/** The experts an MoE architecture gets from its preset. */
function moeOf(preset: SynthPreset, arch: SynthArch): { moe?: MixtureOfExpertsConfig } {
  if (!SYNTH_MOE_ARCHS.includes(arch)) return {};
  const experts = preset.moe;
  if (!experts) {
    const moePresets = ['tiny-mixtral', 'tiny-qwen3-moe', 'tiny-qwen2-moe', 'small-mixtral', 'mixtral-8x7b', 'qwen3-30b-a3b'];
    throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `preset "${preset.name}" has no experts for --arch ${arch}; choose one of: ${moePresets.join(', ')}`);
  }
  return {
    moe: {
      numExperts: experts.numExperts,
      numExpertsPerToken: experts.numExpertsPerToken,
      // As llama.cpp computes each architecture (build_moe_ffn norm_w).
      normTopKProb: arch === 'mixtral' ? true : arch === 'qwen2_moe' ? false : experts.normTopKProb,
      expertIntermediateSize: experts.expertIntermediateSize,
      ...(arch === 'qwen2_moe' && { sharedExpertIntermediateSize: experts.sharedExpertIntermediateSize ?? preset.intermediateSize }),
    },
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
    if (config.moe) {
      moeTensorSpecs(config.moe, hidden).forEach(([suffix, shape, isMatrix]) => blk(suffix, shape, isMatrix));
      continue;
    }
    blk('ffn_gate.weight', [ffn, hidden], true);
    blk('ffn_up.weight', [ffn, hidden], true);
    blk('ffn_down.weight', [hidden, ffn], true);
  }
  specs.push({ name: 'output_norm.weight', shape: [hidden], isMatrix: false });
  if (!config.tiedEmbeddings) specs.push({ name: 'output.weight', shape: [config.vocabSize, hidden], isMatrix: true });
  return specs;
}

/** An MoE layer's tensors as llama.cpp names them; the routers stay f32 as llama.cpp's quantizer keeps them. */
function moeTensorSpecs(moe: MixtureOfExpertsConfig, hidden: number): Array<[string, number[], boolean]> {
  const { numExperts: experts, expertIntermediateSize: ff } = moe;
  const specs: Array<[string, number[], boolean]> = [
    ['ffn_gate_inp.weight', [experts, hidden], false],
    ['ffn_gate_exps.weight', [experts, ff, hidden], true],
    ['ffn_up_exps.weight', [experts, ff, hidden], true],
    ['ffn_down_exps.weight', [experts, hidden, ff], true],
  ];
  const shared = moe.sharedExpertIntermediateSize;
  if (shared !== undefined) {
    specs.push(
      ['ffn_gate_inp_shexp.weight', [hidden], false],
      ['ffn_gate_shexp.weight', [shared, hidden], true],
      ['ffn_up_shexp.weight', [shared, hidden], true],
      ['ffn_down_shexp.weight', [hidden, shared], true],
    );
  }
  return specs;
}
