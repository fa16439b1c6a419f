import assert from 'node:assert/strict';
import { test } from 'node:test';
import { configFromGguf } from './config-from-gguf.js';
import { configFromHf } from './config-from-hf.js';

const ATTENTION = { hidden_size: 64, num_attention_heads: 4, num_key_value_heads: 2, num_hidden_layers: 2, vocab_size: 100 };

test('config.json: Mixtral always renormalises; Qwen MoE follows norm_topk_prob; shared expert only for Qwen2-MoE', () => {
  const mixtral = configFromHf({
    config: { model_type: 'mixtral', ...ATTENTION, intermediate_size: 96, num_local_experts: 8, num_experts_per_tok: 2 },
    tensorNames: new Set(),
  });
  assert.equal(mixtral.architecture, 'mixtral');
  assert.deepEqual(mixtral.moe, { numExperts: 8, numExpertsPerToken: 2, normTopKProb: true, expertIntermediateSize: 96 });
  const qwen2 = configFromHf({
    config: { model_type: 'qwen2_moe', ...ATTENTION, intermediate_size: 128, moe_intermediate_size: 32, shared_expert_intermediate_size: 48, num_experts: 4, num_experts_per_tok: 2 },
    tensorNames: new Set(),
  });
  assert.deepEqual(qwen2.moe, { numExperts: 4, numExpertsPerToken: 2, normTopKProb: false, expertIntermediateSize: 32, sharedExpertIntermediateSize: 48 });
  assert.equal(qwen2.intermediateSize, 128, 'dense layers keep intermediate_size');
  const qwen3 = configFromHf({
    config: { model_type: 'qwen3_moe', ...ATTENTION, intermediate_size: 128, moe_intermediate_size: 32, num_experts: 16, num_experts_per_tok: 4, norm_topk_prob: true },
    tensorNames: new Set(),
  });
  assert.deepEqual(qwen3.moe, { numExperts: 16, numExpertsPerToken: 4, normTopKProb: true, expertIntermediateSize: 32 });
  const dense = configFromHf({ config: { model_type: 'qwen3', ...ATTENTION, intermediate_size: 128 }, tensorNames: new Set() });
  assert.equal(dense.moe, undefined);
});

function gguf(arch: string, extra: Record<string, unknown>, tensors: string[] = []): ReturnType<typeof configFromGguf> {
  const metadata = new Map<string, unknown>([
    ['general.architecture', arch],
    [`${arch}.embedding_length`, 64],
    [`${arch}.block_count`, 2],
    [`${arch}.attention.head_count`, 4],
    [`${arch}.attention.head_count_kv`, 2],
    [`${arch}.feed_forward_length`, 96],
    ...Object.entries(extra),
  ]);
  return configFromGguf({ metadata, tensorNames: new Set(['output.weight', ...tensors]), embeddingRows: 100 });
}

test('GGUF: a llama file with experts is Mixtral (adjacent RoPE); qwen2moe/qwen3moe normalise as llama.cpp does', () => {
  const mixtral = gguf('llama', { 'llama.expert_count': 8, 'llama.expert_used_count': 2 });
  assert.equal(mixtral.architecture, 'mixtral');
  assert.equal(mixtral.ropeStyle, 'adjacent');
  assert.deepEqual(mixtral.moe, { numExperts: 8, numExpertsPerToken: 2, normTopKProb: true, expertIntermediateSize: 96 });
  assert.equal(gguf('llama', {}).moe, undefined);
  const qwen2 = gguf(
    'qwen2moe',
    { 'qwen2moe.expert_count': 4, 'qwen2moe.expert_used_count': 2, 'qwen2moe.expert_feed_forward_length': 32, 'qwen2moe.expert_shared_feed_forward_length': 48 },
    ['blk.0.ffn_gate_shexp.weight'],
  );
  assert.equal(qwen2.architecture, 'qwen2_moe');
  assert.equal(qwen2.ropeStyle, 'halves');
  assert.deepEqual(qwen2.moe, { numExperts: 4, numExpertsPerToken: 2, normTopKProb: false, expertIntermediateSize: 32, sharedExpertIntermediateSize: 48 });
  const qwen3 = gguf('qwen3moe', { 'qwen3moe.expert_count': 16, 'qwen3moe.expert_used_count': 4, 'qwen3moe.expert_feed_forward_length': 32 });
  assert.deepEqual(qwen3.moe, { numExperts: 16, numExpertsPerToken: 4, normTopKProb: true, expertIntermediateSize: 32 });
  const unnormalised = gguf('qwen3moe', { 'qwen3moe.expert_count': 16, 'qwen3moe.expert_used_count': 4, 'qwen3moe.expert_weights_norm': false });
  assert.equal(unnormalised.moe?.normTopKProb, false);
});
