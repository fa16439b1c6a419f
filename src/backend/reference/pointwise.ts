/**
 * Row-wise and elementwise ops: RMSNorm, RoPE, SiLU gating, bias and residual
 * adds. Float32Array stores round each result to float32 once.
 */
import type { RopeArgs } from '../backend.js';
import { check } from '../../core/errors.js';
import { checkBiasRows, checkRopeArgs } from '../pointwise-args.js';

/**
 * RMSNorm of x [numRows, dim] times weight [dim] → [numRows, dim].
 * Rounds like llama.cpp (ggml_rms_norm then ggml_mul): squares in float32
 * summed in float64 left to right, a float32 scale 1/sqrtf(mean + eps), then
 * x·scale and ·weight each rounded to float32.
 */
export function rmsNorm(x: Float32Array, weight: Float32Array, numRows: number, eps: number): Float32Array {
  const dim = weight.length;
  check(
    x.length === numRows * dim,
    'TESSERA_ERR_INVALID_ARGUMENT',
    `rmsNorm input has ${x.length} values, expected ${numRows} rows of ${dim}`,
  );
  const epsF = Math.fround(eps);
  /** [numRows, dim] */
  const out = new Float32Array(x.length);
  for (let r = 0; r < numRows; r++) {
    const base = r * dim;
    let sumSquares = 0;
    for (let i = 0; i < dim; i++) sumSquares += Math.fround(x[base + i] * x[base + i]);
    const mean = Math.fround(sumSquares / dim);
    const scale = Math.fround(1 / Math.fround(Math.sqrt(Math.fround(mean + epsF))));
    for (let i = 0; i < dim; i++) out[base + i] = Math.fround(x[base + i] * scale) * weight[i];
  }
  return out;
}

/** Rotates the first ropeDims dims of each head of x in place; cos/sin in float64. */
export function rope(args: RopeArgs): void {
  const { x, positions, numHeads, headDim, ropeDims, style, inverseFrequencies } = args;
  const half = ropeDims / 2;
  checkRopeArgs(args);
  /** [half] */
  const cos = new Float64Array(half);
  /** [half] */
  const sin = new Float64Array(half);
  // adjacent pairs (2i, 2i+1); halves pairs (i, i + half)
  const pairStride = style === 'adjacent' ? 2 : 1;
  const partnerOffset = style === 'adjacent' ? 1 : half;
  for (let t = 0; t < positions.length; t++) {
    for (let i = 0; i < half; i++) {
      const angle = positions[t] * inverseFrequencies[i];
      cos[i] = Math.cos(angle);
      sin[i] = Math.sin(angle);
    }
    for (let h = 0; h < numHeads; h++) {
      const head = (t * numHeads + h) * headDim;
      for (let i = 0; i < half; i++) {
        const a = head + i * pairStride;
        const b = a + partnerOffset;
        const x0 = x[a];
        const x1 = x[b];
        x[a] = x0 * cos[i] - x1 * sin[i];
        x[b] = x0 * sin[i] + x1 * cos[i];
      }
    }
  }
}

/** silu(gate) * up → new array. */
export function siluMul(gate: Float32Array, up: Float32Array): Float32Array {
  check(gate.length === up.length, 'TESSERA_ERR_INVALID_ARGUMENT', `siluMul got ${gate.length} gate and ${up.length} up values`);
  const out = new Float32Array(gate.length);
  for (let i = 0; i < gate.length; i++) {
    const g = gate[i];
    out[i] = (g / (1 + Math.exp(-g))) * up[i];
  }
  return out;
}

/** x [numRows, dim] += bias [dim], in place. */
export function addBias(x: Float32Array, bias: Float32Array, numRows: number): void {
  const dim = bias.length;
  checkBiasRows(x, numRows, dim);
  for (let r = 0; r < numRows; r++) {
    const base = r * dim;
    for (let i = 0; i < dim; i++) x[base + i] += bias[i];
  }
}

/** a += b, in place. */
export function addInPlace(a: Float32Array, b: Float32Array): void {
  check(a.length === b.length, 'TESSERA_ERR_INVALID_ARGUMENT', `addInPlace got arrays of ${a.length} and ${b.length} values`);
  for (let i = 0; i < a.length; i++) a[i] += b[i];
}
