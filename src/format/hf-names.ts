/**
 * Tensor names of Hugging Face Llama/Mistral/Qwen2/Qwen3 (and their MoE
 * variants Mixtral, Qwen2-MoE, Qwen3-MoE) checkpoints and the canonical
 * GGUF-style names every Tessera store exposes. Names that neither table
 * knows (rotary buffers …) pass through unchanged, so a store never hides a
 * tensor; the model layer decides what it needs.
 *
 * Expert tensors keep the layout they were stored in, because splitting
 * them would cost a copy at load time:
 * - packed (transformers ≥ 4.5x): `mlp.experts.gate_up_proj` [E, 2·ff, d]
 *   → `ffn_gate_up_exps.weight` (rows [0, ff) of each expert are the gate),
 *   `mlp.experts.down_proj` [E, d, ff] → `ffn_down_exps.weight`;
 * - one tensor per expert (classic Mixtral `block_sparse_moe.experts.e.w1/w3/w2`,
 *   Qwen `mlp.experts.e.gate_proj/up_proj/down_proj`) → `ffn_gate.e.weight`,
 *   `ffn_up.e.weight`, `ffn_down.e.weight` (old llama.cpp GGUF names);
 * - GGUF files hold `ffn_gate_exps`/`ffn_up_exps`/`ffn_down_exps` [E, ·, ·].
 */

/** Whole-model tensors: HF name → canonical name. */
const GLOBAL_NAMES: ReadonlyArray<readonly [string, string]> = [
  ['model.embed_tokens.weight', 'token_embd.weight'],
  ['model.norm.weight', 'output_norm.weight'],
  ['lm_head.weight', 'output.weight'],
];

/** Per-layer suffixes: HF `model.layers.N.<hf>` → canonical `blk.N.<canonical>`. */
const LAYER_SUFFIXES: ReadonlyArray<readonly [string, string]> = [
  ['input_layernorm.weight', 'attn_norm.weight'],
  ['post_attention_layernorm.weight', 'ffn_norm.weight'],
  ['self_attn.q_proj.weight', 'attn_q.weight'],
  ['self_attn.k_proj.weight', 'attn_k.weight'],
  ['self_attn.v_proj.weight', 'attn_v.weight'],
  ['self_attn.q_proj.bias', 'attn_q.bias'],
  ['self_attn.k_proj.bias', 'attn_k.bias'],
  ['self_attn.v_proj.bias', 'attn_v.bias'],
  ['self_attn.o_proj.weight', 'attn_output.weight'],
  ['self_attn.o_proj.bias', 'attn_output.bias'],
  ['self_attn.q_norm.weight', 'attn_q_norm.weight'],
  ['self_attn.k_norm.weight', 'attn_k_norm.weight'],
  ['mlp.gate_proj.weight', 'ffn_gate.weight'],
  ['mlp.up_proj.weight', 'ffn_up.weight'],
  ['mlp.down_proj.weight', 'ffn_down.weight'],
  // Router: the later (mlp.gate) wins when mapping back.
  ['block_sparse_moe.gate.weight', 'ffn_gate_inp.weight'],
  ['mlp.gate.weight', 'ffn_gate_inp.weight'],
  ['mlp.experts.gate_up_proj', 'ffn_gate_up_exps.weight'],
  ['mlp.experts.down_proj', 'ffn_down_exps.weight'],
  ['mlp.shared_expert.gate_proj.weight', 'ffn_gate_shexp.weight'],
  ['mlp.shared_expert.up_proj.weight', 'ffn_up_shexp.weight'],
  ['mlp.shared_expert.down_proj.weight', 'ffn_down_shexp.weight'],
  ['mlp.shared_expert_gate.weight', 'ffn_gate_inp_shexp.weight'],
];

/** One tensor per expert: HF projection name → canonical kind. */
const EXPERT_PROJECTIONS: Readonly<Record<string, string>> = {
  w1: 'ffn_gate',
  w3: 'ffn_up',
  w2: 'ffn_down',
  gate_proj: 'ffn_gate',
  up_proj: 'ffn_up',
  down_proj: 'ffn_down',
};
const EXPERT_TO_HF: Readonly<Record<string, string>> = { ffn_gate: 'gate_proj', ffn_up: 'up_proj', ffn_down: 'down_proj' };
const HF_EXPERT = /^(?:block_sparse_moe|mlp)\.experts\.(\d+)\.(w1|w2|w3|gate_proj|up_proj|down_proj)\.weight$/;
const CANONICAL_EXPERT = /^(ffn_gate|ffn_up|ffn_down)\.(\d+)\.weight$/;

const GLOBAL_TO_CANONICAL = new Map(GLOBAL_NAMES);
const GLOBAL_TO_HF = new Map(GLOBAL_NAMES.map(([hf, canonical]) => [canonical, hf] as const));
const SUFFIX_TO_CANONICAL = new Map(LAYER_SUFFIXES);
const SUFFIX_TO_HF = new Map(LAYER_SUFFIXES.map(([hf, canonical]) => [canonical, hf] as const));

const HF_LAYER = /^model\.layers\.(\d+)\.(.+)$/;
const CANONICAL_LAYER = /^blk\.(\d+)\.(.+)$/;

/** Canonical name of a Hugging Face tensor name; unknown names are returned as they are. */
export function canonicalFromHf(hfName: string): string {
  const global = GLOBAL_TO_CANONICAL.get(hfName);
  if (global !== undefined) return global;
  const match = HF_LAYER.exec(hfName);
  if (!match) return hfName;
  const suffix = SUFFIX_TO_CANONICAL.get(match[2]);
  if (suffix !== undefined) return `blk.${match[1]}.${suffix}`;
  const expert = HF_EXPERT.exec(match[2]);
  return expert ? `blk.${match[1]}.${EXPERT_PROJECTIONS[expert[2]]}.${expert[1]}.weight` : hfName;
}

/** Hugging Face name of a canonical tensor name; unknown names are returned as they are. */
export function hfFromCanonical(canonicalName: string): string {
  const global = GLOBAL_TO_HF.get(canonicalName);
  if (global !== undefined) return global;
  const match = CANONICAL_LAYER.exec(canonicalName);
  if (!match) return canonicalName;
  const suffix = SUFFIX_TO_HF.get(match[2]);
  if (suffix !== undefined) return `model.layers.${match[1]}.${suffix}`;
  const expert = CANONICAL_EXPERT.exec(match[2]);
  return expert ? `model.layers.${match[1]}.mlp.experts.${expert[2]}.${EXPERT_TO_HF[expert[1]]}.weight` : canonicalName;
}
