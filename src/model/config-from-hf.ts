/** ModelConfig from a Hugging Face config.json (+ generation_config.json). */
import type { Architecture, MixtureOfExpertsConfig, ModelConfig, RopeScaling } from '../core/model-config.js';
import { TesseraError } from '../core/errors.js';
import { MetadataReader } from './metadata-reader.js';

const HF_MODEL_TYPES: Record<string, Architecture> = {
  llama: 'llama',
  mistral: 'mistral',
  qwen2: 'qwen2',
  qwen3: 'qwen3',
  mixtral: 'mixtral',
  qwen2_moe: 'qwen2_moe',
  qwen3_moe: 'qwen3_moe',
};

export interface HfConfigInput {
  config: Record<string, unknown>;
  generationConfig?: Record<string, unknown>;
  tensorNames: ReadonlySet<string>;
}

export function configFromHf(input: HfConfigInput): ModelConfig {
  const meta = new MetadataReader((key) => input.config[key], 'config.json');
  const modelType = meta.string('model_type');
  const architecture = HF_MODEL_TYPES[modelType];
  if (!architecture) {
    throw new TesseraError(
      'TESSERA_ERR_UNSUPPORTED_ARCH',
      `model_type "${modelType}" is not supported; supported: ${Object.keys(HF_MODEL_TYPES).join(', ')}`,
    );
  }
  const hiddenSize = meta.number('hidden_size');
  const numHeads = meta.number('num_attention_heads');
  const headDim = meta.number('head_dim', hiddenSize / numHeads);
  const generation = new MetadataReader((key) => input.generationConfig?.[key], 'generation_config.json');
  const eos = generation.numberList('eos_token_id');
  return {
    architecture,
    vocabSize: meta.number('vocab_size'),
    hiddenSize,
    intermediateSize: meta.number('intermediate_size'),
    numLayers: meta.number('num_hidden_layers'),
    numHeads,
    numKvHeads: meta.number('num_key_value_heads', numHeads),
    headDim,
    ropeDims: Math.round(headDim * meta.number('partial_rotary_factor', 1)),
    ropeTheta: meta.number('rope_theta', 10000),
    ropeStyle: 'halves',
    ropeScaling: ropeScaling(input.config['rope_scaling']),
    rmsNormEps: meta.number('rms_norm_eps', 1e-6),
    contextLength: usableContext(meta),
    // A checkpoint that ties but still saves lm_head holds the same values in both.
    tiedEmbeddings: !input.tensorNames.has('output.weight') || meta.boolean('tie_word_embeddings', false),
    qkvBias: input.tensorNames.has('blk.0.attn_q.bias'),
    qkNorm: input.tensorNames.has('blk.0.attn_q_norm.weight'),
    bosTokenId: meta.optionalNumber('bos_token_id'),
    eosTokenIds: eos.length > 0 ? eos : meta.numberList('eos_token_id'),
    ...moeFields(architecture, meta),
  };
}

/** The MoE block of config.json: Mixtral names it num_local_experts and always renormalises. */
function moeFields(architecture: Architecture, meta: MetadataReader): { moe?: MixtureOfExpertsConfig } {
  if (architecture === 'mixtral') {
    return {
      moe: {
        numExperts: meta.number('num_local_experts'),
        numExpertsPerToken: meta.number('num_experts_per_tok'),
        normTopKProb: true,
        expertIntermediateSize: meta.number('intermediate_size'),
      },
    };
  }
  if (architecture !== 'qwen2_moe' && architecture !== 'qwen3_moe') return {};
  const shared = architecture === 'qwen2_moe' ? meta.number('shared_expert_intermediate_size', 0) : 0;
  return {
    moe: {
      numExperts: meta.number('num_experts'),
      numExpertsPerToken: meta.number('num_experts_per_tok'),
      normTopKProb: meta.boolean('norm_topk_prob', false),
      expertIntermediateSize: meta.number('moe_intermediate_size'),
      ...(shared > 0 && { sharedExpertIntermediateSize: shared }),
    },
  };
}

function ropeScaling(value: unknown): RopeScaling | undefined {
  if (value === undefined || value === null) return undefined;
  const meta = new MetadataReader((key) => (value as Record<string, unknown>)[key], 'config.json rope_scaling');
  const type = meta.string('rope_type', meta.string('type', ''));
  if (type === 'default' || type === '') return undefined;
  if (type !== 'llama3') {
    throw new TesseraError('TESSERA_ERR_UNSUPPORTED_ARCH', `rope_scaling type "${type}" is not supported; supported: llama3`);
  }
  return {
    type: 'llama3',
    factor: meta.number('factor'),
    lowFreqFactor: meta.number('low_freq_factor'),
    highFreqFactor: meta.number('high_freq_factor'),
    originalContextLength: meta.number('original_max_position_embeddings'),
  };
}

/**
 * Attention here is full, not windowed, so a sliding-window model (Mistral
 * v0.1) is exact only up to its window: the context is capped there.
 */
function usableContext(meta: MetadataReader): number {
  const context = meta.number('max_position_embeddings', 2048);
  // Qwen2 configs state a window but switch it off with use_sliding_window: false.
  if (!meta.boolean('use_sliding_window', true)) return context;
  const window = meta.optionalNumber('sliding_window');
  return window !== undefined && window > 0 ? Math.min(context, window) : context;
}
