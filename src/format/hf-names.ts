/**
 * Tensor names of Hugging Face Llama/Mistral/Qwen2/Qwen3 checkpoints and the
 * canonical GGUF-style names every Tessera store exposes. Names that neither
 * table knows (MoE experts, rotary buffers …) pass through unchanged, so a
 * store never hides a tensor; the model layer decides what it needs.
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
];

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
  return suffix === undefined ? hfName : `blk.${match[1]}.${suffix}`;
}

/** Hugging Face name of a canonical tensor name; unknown names are returned as they are. */
export function hfFromCanonical(canonicalName: string): string {
  const global = GLOBAL_TO_HF.get(canonicalName);
  if (global !== undefined) return global;
  const match = CANONICAL_LAYER.exec(canonicalName);
  if (!match) return canonicalName;
  const suffix = SUFFIX_TO_HF.get(match[2]);
  return suffix === undefined ? canonicalName : `model.layers.${match[1]}.${suffix}`;
}
