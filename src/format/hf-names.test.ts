import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalFromHf, hfFromCanonical } from './hf-names.js';

const PAIRS: Array<[string, string]> = [
  ['model.embed_tokens.weight', 'token_embd.weight'],
  ['model.norm.weight', 'output_norm.weight'],
  ['lm_head.weight', 'output.weight'],
  ['model.layers.0.input_layernorm.weight', 'blk.0.attn_norm.weight'],
  ['model.layers.11.post_attention_layernorm.weight', 'blk.11.ffn_norm.weight'],
  ['model.layers.3.self_attn.q_proj.weight', 'blk.3.attn_q.weight'],
  ['model.layers.3.self_attn.k_proj.weight', 'blk.3.attn_k.weight'],
  ['model.layers.3.self_attn.v_proj.weight', 'blk.3.attn_v.weight'],
  ['model.layers.3.self_attn.q_proj.bias', 'blk.3.attn_q.bias'],
  ['model.layers.3.self_attn.k_proj.bias', 'blk.3.attn_k.bias'],
  ['model.layers.3.self_attn.v_proj.bias', 'blk.3.attn_v.bias'],
  ['model.layers.3.self_attn.o_proj.weight', 'blk.3.attn_output.weight'],
  ['model.layers.3.self_attn.q_norm.weight', 'blk.3.attn_q_norm.weight'],
  ['model.layers.3.self_attn.k_norm.weight', 'blk.3.attn_k_norm.weight'],
  ['model.layers.27.mlp.gate_proj.weight', 'blk.27.ffn_gate.weight'],
  ['model.layers.27.mlp.up_proj.weight', 'blk.27.ffn_up.weight'],
  ['model.layers.27.mlp.down_proj.weight', 'blk.27.ffn_down.weight'],
  ['model.layers.1.mlp.gate.weight', 'blk.1.ffn_gate_inp.weight'],
  ['model.layers.1.mlp.experts.gate_up_proj', 'blk.1.ffn_gate_up_exps.weight'],
  ['model.layers.1.mlp.experts.down_proj', 'blk.1.ffn_down_exps.weight'],
  ['model.layers.1.mlp.experts.7.gate_proj.weight', 'blk.1.ffn_gate.7.weight'],
  ['model.layers.1.mlp.experts.7.up_proj.weight', 'blk.1.ffn_up.7.weight'],
  ['model.layers.1.mlp.experts.12.down_proj.weight', 'blk.1.ffn_down.12.weight'],
  ['model.layers.1.mlp.shared_expert.gate_proj.weight', 'blk.1.ffn_gate_shexp.weight'],
  ['model.layers.1.mlp.shared_expert.up_proj.weight', 'blk.1.ffn_up_shexp.weight'],
  ['model.layers.1.mlp.shared_expert.down_proj.weight', 'blk.1.ffn_down_shexp.weight'],
  ['model.layers.1.mlp.shared_expert_gate.weight', 'blk.1.ffn_gate_inp_shexp.weight'],
];

test('classic Mixtral expert names map to the per-expert canonical names', () => {
  assert.equal(canonicalFromHf('model.layers.2.block_sparse_moe.gate.weight'), 'blk.2.ffn_gate_inp.weight');
  assert.equal(canonicalFromHf('model.layers.2.block_sparse_moe.experts.3.w1.weight'), 'blk.2.ffn_gate.3.weight');
  assert.equal(canonicalFromHf('model.layers.2.block_sparse_moe.experts.3.w3.weight'), 'blk.2.ffn_up.3.weight');
  assert.equal(canonicalFromHf('model.layers.2.block_sparse_moe.experts.3.w2.weight'), 'blk.2.ffn_down.3.weight');
});

test('HF names map to canonical names and back', () => {
  for (const [hf, canonical] of PAIRS) {
    assert.equal(canonicalFromHf(hf), canonical, hf);
    assert.equal(hfFromCanonical(canonical), hf, canonical);
  }
});

test('unknown names pass through unchanged in both directions', () => {
  for (const name of [
    'model.layers.0.self_attn.rotary_emb.inv_freq',
    'blk.0.ffn_gate_exps.weight',
    'model.layers.0.mlp.experts.x.w1.weight',
    'model.layers.x.input_layernorm.weight',
    'embed_tokens.weight',
  ]) {
    assert.equal(canonicalFromHf(name), name);
    assert.equal(hfFromCanonical(name), name);
  }
});
