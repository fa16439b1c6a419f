/**
 * The Hugging Face form of a synthetic MoE layer, as current transformers
 * saves it: packed `mlp.experts.gate_up_proj` [E, 2·ff, d] (each expert's
 * gate rows, then its up rows) and `mlp.experts.down_proj` [E, d, ff]; the
 * Qwen2-MoE shared-expert gate as a [1, d] matrix. Other tensors map by name.
 */
import type { MixtureOfExpertsConfig, ModelConfig } from '../core/model-config.js';
import { quantize } from '../core/quant.js';
import { hfFromCanonical } from '../format/hf-names.js';
import type { SafetensorsTensorSource } from '../format/safetensors-writer.js';
import type { SynthTensorSpec } from './model-spec.js';
import { tensorValues, type WeightContext } from './weights.js';

export interface HfTensorContext {
  weights: WeightContext;
  seed: number;
  dtype: 'f32' | 'f16';
  progress: (elements: number) => void;
}

/** The HF tensors that carry one canonical tensor (none for ffn_up_exps: it travels inside gate_up_proj). */
export function hfTensorSources(spec: SynthTensorSpec, context: HfTensorContext): SafetensorsTensorSource[] {
  const layer = /^blk\.(\d+)\.(.+)$/.exec(spec.name);
  const dtype = spec.isMatrix ? context.dtype : 'f32';
  const values = (name: string, shape: readonly number[]): Float32Array => {
    const result = tensorValues(context.weights, context.seed, name, shape);
    context.progress(result.length);
    return result;
  };
  const moe = context.weights.config.moe;
  if (layer && moe) {
    const prefix = `model.layers.${layer[1]}`;
    switch (layer[2]) {
      case 'ffn_up_exps.weight':
        return [];
      case 'ffn_gate_exps.weight':
        return [{ name: `${prefix}.mlp.experts.gate_up_proj`, dtype, shape: gateUpShape(moe, spec.shape), data: () => quantize(dtype, packGateUp(spec, moe, values)) }];
      case 'ffn_down_exps.weight':
        return [{ name: `${prefix}.mlp.experts.down_proj`, dtype, shape: spec.shape, data: () => quantize(dtype, values(spec.name, spec.shape)) }];
      case 'ffn_gate_inp_shexp.weight':
        return [{ name: `${prefix}.mlp.shared_expert_gate.weight`, dtype: 'f32', shape: [1, spec.shape[0]], data: () => quantize('f32', values(spec.name, spec.shape)) }];
    }
  }
  return [{ name: hfFromCanonical(spec.name), dtype, shape: spec.shape, data: () => quantize(dtype, values(spec.name, spec.shape)) }];
}

function gateUpShape(moe: MixtureOfExpertsConfig, shape: readonly number[]): number[] {
  return [moe.numExperts, 2 * moe.expertIntermediateSize, shape[2]];
}

/** [E, 2·ff, d]: expert e's gate rows then its up rows. */
function packGateUp(spec: SynthTensorSpec, moe: MixtureOfExpertsConfig, values: (name: string, shape: readonly number[]) => Float32Array): Float32Array {
  const gate = values(spec.name, spec.shape);
  const up = values(spec.name.replace('ffn_gate_exps', 'ffn_up_exps'), spec.shape);
  const block = moe.expertIntermediateSize * spec.shape[2];
  const packed = new Float32Array(2 * gate.length);
  for (let expert = 0; expert < moe.numExperts; expert++) {
    packed.set(gate.subarray(expert * block, (expert + 1) * block), 2 * expert * block);
    packed.set(up.subarray(expert * block, (expert + 1) * block), (2 * expert + 1) * block);
  }
  return packed;
}

/** config.json keys of the MoE architectures. */
export function hfMoeConfig(config: ModelConfig): Record<string, unknown> {
  const moe = config.moe;
  if (!moe) return {};
  if (config.architecture === 'mixtral') {
    return { num_local_experts: moe.numExperts, num_experts_per_tok: moe.numExpertsPerToken, router_aux_loss_coef: 0.02, output_router_logits: false };
  }
  return {
    num_experts: moe.numExperts,
    num_experts_per_tok: moe.numExpertsPerToken,
    moe_intermediate_size: moe.expertIntermediateSize,
    norm_topk_prob: moe.normTopKProb,
    decoder_sparse_step: 1,
    mlp_only_layers: [],
    ...(moe.sharedExpertIntermediateSize !== undefined && { shared_expert_intermediate_size: moe.sharedExpertIntermediateSize }),
  };
}
