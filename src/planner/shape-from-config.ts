/**
 * Model shapes from files: a normalized `ModelConfig` (what the model layer
 * reads from GGUF metadata or config.json), or a DeepSeek-V2/V3 config.json,
 * whose latent attention the model layer does not run but the planner prices.
 */
import { TesseraError } from '../core/errors.js';
import type { ModelConfig } from '../core/model-config.js';
import type { ModelShape } from './model-shape.js';

export function shapeFromModelConfig(config: ModelConfig, name: string): ModelShape {
  const moe = config.moe;
  return {
    name,
    numLayers: config.numLayers,
    hiddenSize: config.hiddenSize,
    intermediateSize: config.intermediateSize,
    vocabSize: config.vocabSize,
    tiedEmbeddings: config.tiedEmbeddings,
    contextLength: config.contextLength,
    attention: { kind: 'gqa', numHeads: config.numHeads, numKvHeads: config.numKvHeads, headDim: config.headDim },
    moe: moe
      ? {
          numExperts: moe.numExperts,
          numExpertsPerToken: moe.numExpertsPerToken,
          expertIntermediateSize: moe.expertIntermediateSize,
          sharedIntermediateSize: moe.sharedExpertIntermediateSize ?? 0,
          denseLayers: 0,
        }
      : undefined,
  };
}

function field(config: Readonly<Record<string, unknown>>, key: string, fallback?: number): number {
  const value = config[key];
  if (typeof value === 'number') return value;
  if ((value === undefined || value === null) && fallback !== undefined) return fallback;
  throw new TesseraError('TESSERA_ERR_BAD_CONFIG', `config.json: "${key}" must be a number`);
}

export function isDeepseekConfig(config: Readonly<Record<string, unknown>>): boolean {
  return config['model_type'] === 'deepseek_v3' || config['model_type'] === 'deepseek_v2';
}

/** DeepSeek-V2/V3: multi-head latent attention, shared experts, the first layers dense. */
export function shapeFromDeepseekConfig(config: Readonly<Record<string, unknown>>, name: string): ModelShape {
  const hidden = field(config, 'hidden_size');
  return {
    name,
    numLayers: field(config, 'num_hidden_layers'),
    hiddenSize: hidden,
    intermediateSize: field(config, 'intermediate_size'),
    vocabSize: field(config, 'vocab_size'),
    tiedEmbeddings: config['tie_word_embeddings'] === true,
    contextLength: field(config, 'max_position_embeddings', 4096),
    attention: {
      kind: 'mla',
      numHeads: field(config, 'num_attention_heads'),
      qLoraRank: field(config, 'q_lora_rank', 0),
      kvLoraRank: field(config, 'kv_lora_rank'),
      qkNopeHeadDim: field(config, 'qk_nope_head_dim'),
      qkRopeHeadDim: field(config, 'qk_rope_head_dim'),
      vHeadDim: field(config, 'v_head_dim'),
    },
    moe: {
      numExperts: field(config, 'n_routed_experts'),
      numExpertsPerToken: field(config, 'num_experts_per_tok'),
      expertIntermediateSize: field(config, 'moe_intermediate_size'),
      sharedIntermediateSize: field(config, 'n_shared_experts', 0) * field(config, 'moe_intermediate_size'),
      denseLayers: field(config, 'first_k_dense_replace', 0),
    },
  };
}
