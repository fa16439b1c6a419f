/**
 * Values of synthetic weights, in Hugging Face layout (rotate-half RoPE),
 * generated per tensor from (seed, name) so any tensor can be made alone.
 *
 * Scaling keeps the model well-conditioned: embeddings ~ N(0, 1), each matrix
 * ~ N(0, gain² / inFeatures) so every layer's output is O(1) and the residual
 * stream grows slowly, norms near 1. See `WEIGHT_GAINS` for the margins this
 * gives.
 */
import type { ModelConfig } from '../../core/model-config.js';
import { RandomStream } from './random.js';

/** Standard deviations relative to 1/sqrt(inFeatures); tuned for clear top-1 margins (see synthesize.test). */
export const WEIGHT_GAINS = {
  attention: 1.0,
  attentionOutput: 0.5,
  feedForward: 1.0,
  feedForwardDown: 0.5,
  /** Logit scale: output rows ~ N(0, (gain² / hidden)). */
  output: 4.0,
  /** Spread of norm weights around 1. */
  norm: 0.1,
  /** Std of q/k/v biases (Qwen2). */
  bias: 0.5,
} as const;

function suffixOf(name: string): string {
  const match = /^blk\.\d+\.(.+)$/.exec(name);
  return match ? match[1] : name;
}

function normal(seed: number, name: string, length: number, std: number): Float32Array {
  return new RandomStream(seed, name).fillNormal(new Float32Array(length), std);
}

/** Values of tensor `name` of shape `shape`, Hugging Face layout, row-major. */
export function tensorValues(config: ModelConfig, seed: number, name: string, shape: readonly number[]): Float32Array {
  const length = shape.reduce((a, b) => a * b, 1);
  const inFeatures = shape[shape.length - 1];
  const g = WEIGHT_GAINS;
  switch (suffixOf(name)) {
    case 'token_embd.weight':
      return normal(seed, name, length, 1);
    case 'output.weight':
      return normal(seed, name, length, g.output / Math.sqrt(inFeatures));
    case 'rope_freqs.weight':
      return llama3RopeFactors(config);
    case 'attn_q.weight':
    case 'attn_k.weight':
    case 'attn_v.weight':
      return normal(seed, name, length, g.attention / Math.sqrt(inFeatures));
    case 'attn_output.weight':
      return normal(seed, name, length, g.attentionOutput / Math.sqrt(inFeatures));
    case 'ffn_gate.weight':
    case 'ffn_up.weight':
      return normal(seed, name, length, g.feedForward / Math.sqrt(inFeatures));
    case 'ffn_down.weight':
      return normal(seed, name, length, g.feedForwardDown / Math.sqrt(inFeatures));
    case 'attn_q.bias':
    case 'attn_k.bias':
    case 'attn_v.bias':
      return normal(seed, name, length, g.bias);
    default:
      // Norm weights: near 1 so RMSNorm keeps activations at unit scale.
      return nearOne(normal(seed, name, length, g.norm));
  }
}

function nearOne(values: Float32Array): Float32Array {
  for (let i = 0; i < values.length; i++) values[i] += 1;
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
