/**
 * Q6_K (ggml block_q6_K, 210 bytes per 256 elements):
 *   ql: uint8[128] (low 4 bits) | qh: uint8[64] (high 2 bits) |
 *   scales: int8[16] (one per 16 elements) | d: f16 (last!)
 * value = d * scales[s] * (q - 32), q a 6-bit unsigned value.
 * Each half of the block (128 elements) uses 64 bytes of ql and 32 of qh:
 * element l + 32k (k = 0..3) takes nibble (k >> 1) of ql[l + 32 (k & 1)]
 * and bits 2k..2k+1 of qh[l].
 */
import { f16ToF32, f32ToF16, readF16 } from '../half.js';

export const Q6_K_BLOCK = 256;
export const Q6_K_BYTES = 210;
const QL = 0;
const QH = 128;
const SCALES = 192;
const D = 208;

export function dequantizeQ6_K(src: Uint8Array, blocks: number, out: Float32Array, outOffset: number): void {
  for (let b = 0; b < blocks; b++) {
    const base = b * Q6_K_BYTES;
    const d = readF16(src, base + D);
    for (let half = 0; half < 2; half++) {
      const ql = base + QL + half * 64;
      const qh = base + QH + half * 32;
      const sc = base + SCALES + half * 8;
      const y = outOffset + b * Q6_K_BLOCK + half * 128;
      for (let l = 0; l < 32; l++) {
        const is = l >> 4;
        const h = src[qh + l];
        const q1 = ((src[ql + l] & 0x0f) | ((h & 3) << 4)) - 32;
        const q2 = ((src[ql + l + 32] & 0x0f) | (((h >>> 2) & 3) << 4)) - 32;
        const q3 = ((src[ql + l] >>> 4) | (((h >>> 4) & 3) << 4)) - 32;
        const q4 = ((src[ql + l + 32] >>> 4) | (((h >>> 6) & 3) << 4)) - 32;
        out[y + l] = Math.fround(d * ((src[sc + is] << 24) >> 24)) * q1;
        out[y + l + 32] = Math.fround(d * ((src[sc + is + 2] << 24) >> 24)) * q2;
        out[y + l + 64] = Math.fround(d * ((src[sc + is + 4] << 24) >> 24)) * q3;
        out[y + l + 96] = Math.fround(d * ((src[sc + is + 6] << 24) >> 24)) * q4;
      }
    }
  }
}

/**
 * Simple, valid Q6_K quantization (ggml's make_qx_quants starting point
 * without its refinement): each 16-element sub-block's value of largest
 * magnitude maps to q = -32, and the 16 sub-block scales are rounded to int8
 * against the block's largest one.
 */
export function quantizeQ6_K(values: Float32Array): Uint8Array {
  const blocks = values.length / Q6_K_BLOCK;
  const out = new Uint8Array(blocks * Q6_K_BYTES);
  for (let b = 0; b < blocks; b++) quantizeBlock(values, b * Q6_K_BLOCK, out, b * Q6_K_BYTES);
  return out;
}

function quantizeBlock(values: Float32Array, x: number, out: Uint8Array, base: number): void {
  const subScales = new Float64Array(16);
  let maxScale = 0;
  for (let s = 0; s < 16; s++) {
    let max = 0;
    for (let l = 0; l < 16; l++) {
      const v = values[x + s * 16 + l];
      if (Math.abs(v) > Math.abs(max)) max = v;
    }
    subScales[s] = max / -32;
    if (Math.abs(subScales[s]) > Math.abs(maxScale)) maxScale = subScales[s];
  }
  const inverse = maxScale !== 0 ? -128 / maxScale : 0;
  const dBits = f32ToF16(maxScale !== 0 ? 1 / inverse : 0);
  const d = f16ToF32(dBits);
  out[base + D] = dBits & 0xff;
  out[base + D + 1] = dBits >>> 8;
  const levels = new Uint8Array(Q6_K_BLOCK);
  for (let s = 0; s < 16; s++) {
    const scale = Math.max(-128, Math.min(127, Math.round(inverse * subScales[s])));
    out[base + SCALES + s] = scale & 0xff;
    const step = Math.fround(d * scale);
    for (let l = 0; l < 16; l++) {
      const q = step !== 0 ? Math.round(values[x + s * 16 + l] / step) : 0;
      levels[s * 16 + l] = Math.max(-32, Math.min(31, q)) + 32;
    }
  }
  packLevels(levels, out, base);
}

function packLevels(levels: Uint8Array, out: Uint8Array, base: number): void {
  for (let half = 0; half < 2; half++) {
    const j = half * 128;
    const ql = base + QL + half * 64;
    const qh = base + QH + half * 32;
    for (let l = 0; l < 32; l++) {
      const q1 = levels[j + l];
      const q2 = levels[j + l + 32];
      const q3 = levels[j + l + 64];
      const q4 = levels[j + l + 96];
      out[ql + l] = (q1 & 0x0f) | ((q3 & 0x0f) << 4);
      out[ql + l + 32] = (q2 & 0x0f) | ((q4 & 0x0f) << 4);
      out[qh + l] = (q1 >>> 4) | ((q2 >>> 4) << 2) | ((q3 >>> 4) << 4) | ((q4 >>> 4) << 6);
    }
  }
}
