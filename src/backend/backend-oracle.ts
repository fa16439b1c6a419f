/**
 * Test-only helpers for the shared backend suite: seeded random data, the
 * naive float64 version of every op, and tolerant comparison. Nothing here is
 * fast or used in production.
 */
import assert from 'node:assert/strict';
import { createKvPool, type KvPool } from './backend.js';
import type { KvDtype } from '../core/kv-dtype.js';
import { f16ToF32, f32ToF16 } from '../core/half.js';
import type { DType } from '../core/dtype.js';
import type { RopeStyle } from '../core/model-config.js';
import { dequantize, quantize } from '../core/quant.js';

/** mulberry32: small, seeded, good enough for test data. */
export class TestRandom {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** [n] uniform values in [-scale, scale). */
  floats(n: number, scale = 1): Float32Array {
    return Float32Array.from({ length: n }, () => (this.next() * 2 - 1) * scale);
  }

  integer(below: number): number {
    return Math.floor(this.next() * below);
  }

  /** A random permutation of 0..n-1. */
  permutation(n: number): Int32Array {
    const out = Int32Array.from({ length: n }, (_, i) => i);
    for (let i = n - 1; i > 0; i--) {
      const j = this.integer(i + 1);
      [out[i], out[j]] = [out[j], out[i]];
    }
    return out;
  }
}

/** Float32 values as little-endian bytes. */
export function f32Bytes(values: Float32Array): Uint8Array {
  const out = new Uint8Array(values.length * 4);
  const view = new DataView(out.buffer);
  values.forEach((v, i) => view.setFloat32(i * 4, v, true));
  return out;
}

/** Every weight type a backend must compute with. */
export const SUITE_DTYPES: readonly DType[] = ['f32', 'f16', 'bf16', 'q8_0', 'q4_0', 'q4_k', 'q6_k'];

/** Stored bytes of `values` in `dtype`, and the values those bytes decode to. */
export function encodeWeight(dtype: DType, values: Float32Array): { bytes: Uint8Array; decoded: Float32Array } {
  const bytes = quantize(dtype, values);
  return { bytes, decoded: dequantize(dtype, bytes, values.length) };
}

/** Asserts |actual - expected| ≤ atol + rtol·|scaleOf(i)| elementwise. */
export function assertClose(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tolerance: { atol: number; rtol: number; scale?: ArrayLike<number> },
  label: string,
): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  for (let i = 0; i < expected.length; i++) {
    const bound = tolerance.atol + tolerance.rtol * Math.abs((tolerance.scale ?? expected)[i]);
    const error = Math.abs(actual[i] - expected[i]);
    if (!(error <= bound)) assert.fail(`${label}[${i}]: got ${actual[i]}, expected ${expected[i]} (error ${error} > ${bound})`);
  }
}

/** Asserts the two arrays hold the same float32 bits. */
export function assertBitwise(actual: Float32Array, expected: Float32Array, label: string): void {
  assert.equal(actual.length, expected.length, `${label}: length`);
  const a = new Uint32Array(actual.buffer, actual.byteOffset, actual.length);
  const b = new Uint32Array(expected.buffer, expected.byteOffset, expected.length);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) assert.fail(`${label}[${i}]: ${actual[i]} !== ${expected[i]}`);
  }
}

/** Two KV pools hold the same bytes (f32 values or f16 bits). */
export function assertSamePool(actual: KvPool, expected: KvPool, label: string): void {
  assert.equal(actual.dtype, expected.dtype, `${label}: dtype`);
  const a = new Uint8Array(actual.data.buffer, actual.data.byteOffset, actual.data.byteLength);
  const b = new Uint8Array(expected.data.buffer, expected.data.byteOffset, expected.data.byteLength);
  assert.equal(a.length, b.length, `${label}: length`);
  for (let i = 0; i < a.length; i++) {
    if (a[i] !== b[i]) assert.fail(`${label}: byte ${i} differs (${a[i]} !== ${b[i]})`);
  }
}

/** Values as an f16 KV cache keeps them: rounded to half (nearest even) and widened back. */
export function roundToF16(values: Float32Array): Float32Array {
  return values.map((v) => f16ToF32(f32ToF16(v)));
}

/** x [N, K] · Wᵀ, w [M, K] → { value, absolute: Σ|x·w| } each [N, M], in float64. */
export function naiveMatmul(x: Float32Array, w: Float32Array, N: number, M: number, K: number): { value: Float64Array; absolute: Float64Array } {
  const value = new Float64Array(N * M);
  const absolute = new Float64Array(N * M);
  for (let n = 0; n < N; n++) {
    for (let m = 0; m < M; m++) {
      let sum = 0;
      let abs = 0;
      for (let k = 0; k < K; k++) {
        const p = x[n * K + k] * w[m * K + k];
        sum += p;
        abs += Math.abs(p);
      }
      value[n * M + m] = sum;
      absolute[n * M + m] = abs;
    }
  }
  return { value, absolute };
}

export function naiveRmsNorm(x: Float32Array, weight: Float32Array, numRows: number, eps: number): Float64Array {
  const dim = weight.length;
  const out = new Float64Array(x.length);
  for (let r = 0; r < numRows; r++) {
    let sum = 0;
    for (let i = 0; i < dim; i++) sum += x[r * dim + i] ** 2;
    const scale = 1 / Math.sqrt(sum / dim + eps);
    for (let i = 0; i < dim; i++) out[r * dim + i] = x[r * dim + i] * scale * weight[i];
  }
  return out;
}

/** RoPE written from its definition: pair (a, b) rotates by position·frequency. */
export function naiveRope(
  x: Float32Array,
  positions: Int32Array,
  numHeads: number,
  headDim: number,
  ropeDims: number,
  style: RopeStyle,
  inverseFrequencies: Float32Array,
): Float64Array {
  const out = Float64Array.from(x);
  for (let t = 0; t < positions.length; t++) {
    for (let h = 0; h < numHeads; h++) {
      const head = (t * numHeads + h) * headDim;
      for (let i = 0; i < ropeDims / 2; i++) {
        const [a, b] = style === 'adjacent' ? [2 * i, 2 * i + 1] : [i, i + ropeDims / 2];
        const angle = positions[t] * inverseFrequencies[i];
        const x0 = x[head + a];
        const x1 = x[head + b];
        out[head + a] = x0 * Math.cos(angle) - x1 * Math.sin(angle);
        out[head + b] = x0 * Math.sin(angle) + x1 * Math.cos(angle);
      }
    }
  }
  return out;
}

/**
 * Causal attention with a plain softmax over contiguous keys/values
 * [seqLen, numKvHeads, headDim]; query [numTokens, numHeads, headDim].
 */
export function naiveAttention(
  query: Float32Array,
  keys: Float32Array,
  values: Float32Array,
  positions: Int32Array,
  numHeads: number,
  numKvHeads: number,
  headDim: number,
  scale: number,
): Float64Array {
  const out = new Float64Array(query.length);
  for (let t = 0; t < positions.length; t++) {
    for (let h = 0; h < numHeads; h++) {
      const kvHead = Math.floor(h / (numHeads / numKvHeads));
      const q = (t * numHeads + h) * headDim;
      const scores = Array.from({ length: positions[t] + 1 }, (_, p) => {
        let dot = 0;
        for (let d = 0; d < headDim; d++) dot += query[q + d] * keys[(p * numKvHeads + kvHead) * headDim + d];
        return dot * scale;
      });
      const max = Math.max(...scores);
      const weights = scores.map((s) => Math.exp(s - max));
      const total = weights.reduce((a, b) => a + b, 0);
      for (let d = 0; d < headDim; d++) {
        let sum = 0;
        weights.forEach((w, p) => (sum += w * values[(p * numKvHeads + kvHead) * headDim + d]));
        out[q + d] = sum / total;
      }
    }
  }
  return out;
}

export function makePool(numBlocks: number, blockSize: number, numKvHeads: number, headDim: number, dtype: KvDtype = 'f32'): KvPool {
  return createKvPool(dtype, numBlocks, blockSize, numKvHeads, headDim);
}

/** Canonical tree over the partial results of K-shards: each [N, M], combined elementwise. */
export function combineShards(parts: Float32Array[]): Float32Array {
  if (parts.length === 1) return parts[0];
  const mid = Math.floor(parts.length / 2);
  const left = combineShards(parts.slice(0, mid));
  const right = combineShards(parts.slice(mid));
  return left.map((v, i) => Math.fround(v + right[i]));
}
