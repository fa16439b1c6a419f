/**
 * Values of synthetic weights, in Hugging Face layout (rotate-half RoPE),
 * generated per tensor from (seed, name) so any tensor can be made alone.
 *
 * Scaling keeps the model well-conditioned: embeddings ~ N(0, 1), each matrix
 * ~ N(0, gain² / inFeatures) so every layer's output is O(1) and the residual
 * stream grows slowly, norms near 1. See `WEIGHT_GAINS` for the margins this
 * gives.
 */
import type { ModelConfig } from '../core/model-config.js';
import { RandomStream } from './random.js';

/**
 * Random weights alone give top-1/top-2 logit margins of about 1 logit with
 * a long tail towards 0, and llama.cpp's 8-bit activations move logits by
 * ~0.1: greedy runs would then flip tokens between implementations. So the
 * model gets a planted structure on top of its random weights, which every
 * layer still computes through:
 * - hidden dims split into A | B | C; token t embeds as (x_t, x_next(t), 1)
 *   where next is a fixed cycle over the text tokens;
 * - in each layer A "shift" FFN units copy B onto A (gate reads the constant
 *   C dims, so SiLU sits in its linear range): the final A part becomes
 *   x_t + SHIFT_TOTAL · x_next(t);
 * - output_norm keeps A and nearly silences B and C, and output rows (or the
 *   tied embedding) are x_j on A, so token next(t) wins by a wide margin;
 * - attention and the other FFN units are plain random (gain < 1): they move
 *   every logit with the context without overturning the winner.
 */
export const WEIGHT_GAINS = {
  attention: 1.0,
  attentionOutput: 0.3,
  feedForward: 1.0,
  feedForwardDown: 0.3,
  /** Sum over layers of the B → A copy. */
  shiftTotal: 5.0,
  /** Pre-activation of the shift units' gate (SiLU(6) ≈ 6). */
  shiftGate: 6.0,
  /** output_norm weight on the B and C dims. */
  quietNorm: 0.05,
  /** Spread of norm weights around 1. */
  norm: 0.05,
  /** Std of q/k/v biases (Qwen2). */
  bias: 0.5,
  /** Scale of the embedding of control/byte/unused tokens (so they are not predicted). */
  otherToken: 0.3,
  /**
   * Std of router logits: wide, so the top-k experts win by margins that
   * float rounding differences between implementations do not overturn.
   */
  router: 4.0,
} as const;

/** What weights depend on besides the seed. */
export interface WeightContext {
  config: ModelConfig;
  /** Ids of ordinary text tokens; the planted cycle runs over them. */
  textTokenIds: readonly number[];
}

/** Sizes of the A | B | C split of the hidden dims. */
export function hiddenSplit(hidden: number): { a: number; c: number } {
  let c = Math.max(4, Math.floor(hidden / 16));
  if ((hidden - c) % 2 !== 0) c += 1;
  return { a: (hidden - c) / 2, c };
}

function suffixOf(name: string): string {
  const match = /^blk\.\d+\.(.+)$/.exec(name);
  return match ? match[1] : name;
}

function normal(seed: number, name: string, length: number, std: number): Float32Array {
  return new RandomStream(seed, name).fillNormal(new Float32Array(length), std);
}

const cycleCache = new Map<string, Int32Array>();

/** [vocab] next(t) for text tokens, -1 for the others: one cycle through a seeded shuffle. */
export function nextTokenCycle(context: WeightContext, seed: number): Int32Array {
  const key = `${seed}/${context.config.vocabSize}/${context.textTokenIds.length}`;
  const cached = cycleCache.get(key);
  if (cached) return cached;
  const order = [...context.textTokenIds];
  const random = new RandomStream(seed, 'next-token-cycle');
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(random.nextUniform() * (i + 1));
    [order[i], order[j]] = [order[j], order[i]];
  }
  const next = new Int32Array(context.config.vocabSize).fill(-1);
  order.forEach((token, i) => {
    next[token] = order[(i + 1) % order.length];
  });
  cycleCache.set(key, next);
  return next;
}

/** [a] the A-part code of token t. */
function tokenCode(seed: number, token: number, a: number): Float32Array {
  return normal(seed, `token-code.${token}`, a, 1);
}

/** [vocab, hidden] (x_t, x_next(t), 1) rows; `withCycle` false leaves B random (output rows). */
function embeddingRows(context: WeightContext, seed: number, name: string, withCycle: boolean): Float32Array {
  const { vocabSize: vocab, hiddenSize: hidden } = context.config;
  const { a } = hiddenSplit(hidden);
  const next = nextTokenCycle(context, seed);
  const out = new Float32Array(vocab * hidden);
  const noise = new RandomStream(seed, name);
  const scratch = new Float32Array(hidden);
  for (let t = 0; t < vocab; t++) {
    const row = out.subarray(t * hidden, (t + 1) * hidden);
    noise.fillNormal(scratch, 1);
    if (next[t] < 0) {
      for (let i = 0; i < hidden; i++) row[i] = scratch[i] * WEIGHT_GAINS.otherToken;
      continue;
    }
    row.set(tokenCode(seed, t, a), 0);
    if (withCycle) {
      row.set(tokenCode(seed, next[t], a), a);
      row.fill(1, 2 * a);
    } else {
      for (let i = a; i < hidden; i++) row[i] = scratch[i] * 0.1;
    }
  }
  return out;
}

/** Values of tensor `name` of shape `shape`, Hugging Face layout, row-major. */
export function tensorValues(context: WeightContext, seed: number, name: string, shape: readonly number[]): Float32Array {
  const { config } = context;
  const length = shape.reduce((a, b) => a * b, 1);
  const inFeatures = shape[shape.length - 1];
  const g = WEIGHT_GAINS;
  switch (suffixOf(name)) {
    case 'token_embd.weight':
      return embeddingRows(context, seed, name, true);
    case 'output.weight':
      return embeddingRows(context, seed, name, false);
    case 'rope_freqs.weight':
      return llama3RopeFactors(config);
    case 'output_norm.weight':
      return outputNorm(config.hiddenSize, normal(seed, name, length, g.norm));
    case 'attn_q.weight':
    case 'attn_k.weight':
    case 'attn_v.weight':
      return normal(seed, name, length, g.attention / Math.sqrt(inFeatures));
    case 'attn_output.weight':
      return normal(seed, name, length, g.attentionOutput / Math.sqrt(inFeatures));
    case 'ffn_gate.weight':
    case 'ffn_up.weight':
    case 'ffn_down.weight':
      return feedForward(config, suffixOf(name).replace('.weight', ''), normal(seed, name, length, 1), shape, config.intermediateSize);
    case 'ffn_gate_shexp.weight':
    case 'ffn_up_shexp.weight':
    case 'ffn_down_shexp.weight':
      return feedForward(config, suffixOf(name).replace('_shexp.weight', ''), normal(seed, name, length, 1), shape, config.moe?.sharedExpertIntermediateSize ?? 0);
    case 'ffn_gate_exps.weight':
    case 'ffn_up_exps.weight':
    case 'ffn_down_exps.weight':
      return experts(config, seed, name, shape);
    case 'ffn_gate_inp.weight':
      return normal(seed, name, length, g.router / Math.sqrt(inFeatures));
    case 'ffn_gate_inp_shexp.weight':
      return normal(seed, name, length, 1 / Math.sqrt(inFeatures));
    case 'attn_q.bias':
    case 'attn_k.bias':
    case 'attn_v.bias':
      return normal(seed, name, length, g.bias);
    default:
      // Other norm weights: near 1 so RMSNorm keeps activations at unit scale.
      return nearOne(normal(seed, name, length, g.norm));
  }
}

function nearOne(values: Float32Array): Float32Array {
  for (let i = 0; i < values.length; i++) values[i] += 1;
  return values;
}

/** [hidden] ≈1 on A, ≈quietNorm on B and C. */
function outputNorm(hidden: number, jitter: Float32Array): Float32Array {
  const { a } = hiddenSplit(hidden);
  for (let i = 0; i < hidden; i++) jitter[i] = i < a ? 1 + jitter[i] : WEIGHT_GAINS.quietNorm * (1 + jitter[i]);
  return jitter;
}

/**
 * [numExperts, ·, ·] every expert planted like a dense feed-forward (so the
 * weighted sum of the chosen experts still carries the copy), with its own
 * random part.
 */
function experts(config: ModelConfig, seed: number, name: string, shape: readonly number[]): Float32Array {
  const [count, rows, cols] = shape;
  const kind = suffixOf(name).replace('_exps.weight', '');
  const out = new Float32Array(count * rows * cols);
  for (let expert = 0; expert < count; expert++) {
    const values = normal(seed, `${name}.${expert}`, rows * cols, 1);
    out.set(feedForward(config, kind, values, [rows, cols], config.moe?.expertIntermediateSize ?? 0), expert * rows * cols);
  }
  return out;
}

/**
 * gate/up [ffn, hidden], down [hidden, ffn] from unit normals: units [0, a)
 * copy B dim u onto A dim u; the rest are random.
 */
function feedForward(config: ModelConfig, kind: string, values: Float32Array, shape: readonly number[], ffn: number): Float32Array {
  const { hiddenSize: hidden, numLayers } = config;
  const { a: width, c } = hiddenSplit(hidden);
  // Experts narrower than A (Qwen3-MoE's ff 768 < hidden/2) copy only their first ffn dims.
  const a = Math.min(width, ffn);
  const g = WEIGHT_GAINS;
  if (kind === 'ffn_down') {
    const randomStd = g.feedForwardDown / Math.sqrt(ffn);
    for (let i = 0; i < values.length; i++) values[i] *= randomStd;
    // SiLU(shiftGate) ≈ shiftGate, so each layer adds shiftTotal / numLayers of B onto A.
    const copy = g.shiftTotal / numLayers / g.shiftGate;
    for (let u = 0; u < a; u++) {
      for (let unit = 0; unit < a; unit++) values[u * ffn + unit] = 0;
      values[u * ffn + u] = copy;
    }
    return values;
  }
  const randomStd = g.feedForward / Math.sqrt(hidden);
  for (let i = 0; i < values.length; i++) values[i] *= randomStd;
  for (let unit = 0; unit < a; unit++) {
    const row = values.subarray(unit * shape[1], (unit + 1) * shape[1]);
    row.fill(0);
    if (kind === 'ffn_gate') row.fill(g.shiftGate / c, hidden - c);
    else row[width + unit] = 1;
  }
  return values;
}

/**
 * [headDim / 2] llama3 frequency factors, as llama.cpp's converter computes
 * them into rope_freqs.weight (llama.cpp divides each frequency by its factor).
 */
export function llama3RopeFactors(config: ModelConfig): Float32Array {
  const scaling = config.ropeScaling;
  const half = config.headDim / 2;
  const factors = new Float32Array(half).fill(1);
  if (!scaling) return factors;
  const lowWavelength = scaling.originalContextLength / scaling.lowFreqFactor;
  const highWavelength = scaling.originalContextLength / scaling.highFreqFactor;
  for (let i = 0; i < half; i++) {
    const frequency = 1 / config.ropeTheta ** ((2 * i) / config.headDim);
    const wavelength = (2 * Math.PI) / frequency;
    if (wavelength < highWavelength) factors[i] = 1;
    else if (wavelength > lowWavelength) factors[i] = scaling.factor;
    else {
      const smooth = (scaling.originalContextLength / wavelength - scaling.lowFreqFactor) / (scaling.highFreqFactor - scaling.lowFreqFactor);
      factors[i] = 1 / ((1 - smooth) / scaling.factor + smooth);
    }
  }
  return factors;
}

/**
 * llama.cpp's convert_hf_to_gguf `permute` for LlamaModel Q/K rows:
 * reshape(heads, 2, headDim/2, cols).swapaxes(1, 2): within each head, HF
 * row r = half·(headDim/2) + i moves to GGUF row 2i + half, turning
 * rotate-half pairs (i, i + d/2) into adjacent pairs (2i, 2i+1).
 * [heads·headDim, cols] → [heads·headDim, cols]; also used for 1-D biases (cols 1).
 */
export function permuteForGguf(values: Float32Array, heads: number, cols: number): Float32Array {
  const rows = values.length / cols;
  const headDim = rows / heads;
  const half = headDim / 2;
  const out = new Float32Array(values.length);
  for (let head = 0; head < heads; head++) {
    for (let part = 0; part < 2; part++) {
      for (let i = 0; i < half; i++) {
        const from = head * headDim + part * half + i;
        const to = head * headDim + 2 * i + part;
        out.set(values.subarray(from * cols, (from + 1) * cols), to * cols);
      }
    }
  }
  return out;
}

/** Inverse of `permuteForGguf`: GGUF llama Q/K rows back to Hugging Face order. */
export function unpermuteFromGguf(values: Float32Array, heads: number, cols: number): Float32Array {
  const rows = values.length / cols;
  const headDim = rows / heads;
  const half = headDim / 2;
  const out = new Float32Array(values.length);
  for (let head = 0; head < heads; head++) {
    for (let part = 0; part < 2; part++) {
      for (let i = 0; i < half; i++) {
        const hf = head * headDim + part * half + i;
        const gguf = head * headDim + 2 * i + part;
        out.set(values.subarray(gguf * cols, (gguf + 1) * cols), hf * cols);
      }
    }
  }
  return out;
}
