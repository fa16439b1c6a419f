/**
 * Q4_K (ggml block_q4_K, 144 bytes per 256 elements):
 *   d: f16 | dmin: f16 | scales: uint8[12] (8 six-bit scales and 8 six-bit
 *   mins, packed as in get_scale_min_k4) | qs: uint8[128]
 * The block is 8 sub-blocks of 32; sub-block s has scale d*sc[s] and min
 * dmin*m[s]: value = d*sc*q - dmin*m with q a 4-bit unsigned nibble.
 * qs holds 64 elements per 32 bytes: low nibbles are sub-block 2k, high
 * nibbles sub-block 2k+1.
 */
import { f16ToF32, f32ToF16, readF16 } from '../half.js';

export const Q4_K_BLOCK = 256;
export const Q4_K_BYTES = 144;
const SUB = 32;

/** Six-bit scale and min of sub-block `j` (ggml get_scale_min_k4). */
export function scaleMinK4(scales: Uint8Array, at: number, j: number): [scale: number, min: number] {
  if (j < 4) return [scales[at + j] & 63, scales[at + j + 4] & 63];
  const scale = (scales[at + j + 4] & 0x0f) | ((scales[at + j - 4] >>> 6) << 4);
  const min = (scales[at + j + 4] >>> 4) | ((scales[at + j] >>> 6) << 4);
  return [scale, min];
}

/** Inverse of scaleMinK4 for all 8 sub-blocks; `scales`/`mins` are 0..63. */
export function packScaleMinK4(scale: ArrayLike<number>, min: ArrayLike<number>, out: Uint8Array, at: number): void {
  for (let j = 0; j < 4; j++) {
    out[at + j] = scale[j] | ((scale[j + 4] >>> 4) << 6);
    out[at + j + 4] = min[j] | ((min[j + 4] >>> 4) << 6);
    out[at + j + 8] = (scale[j + 4] & 0x0f) | ((min[j + 4] & 0x0f) << 4);
  }
}

export function dequantizeQ4_K(src: Uint8Array, blocks: number, out: Float32Array, outOffset: number): void {
  for (let b = 0; b < blocks; b++) {
    const base = b * Q4_K_BYTES;
    const d = readF16(src, base);
    const dmin = readF16(src, base + 2);
    let q = base + 16;
    let y = outOffset + b * Q4_K_BLOCK;
    for (let s = 0; s < 8; s += 2) {
      const [sc1, m1] = scaleMinK4(src, base + 4, s);
      const [sc2, m2] = scaleMinK4(src, base + 4, s + 1);
      const d1 = Math.fround(d * sc1);
      const min1 = Math.fround(dmin * m1);
      const d2 = Math.fround(d * sc2);
      const min2 = Math.fround(dmin * m2);
      for (let l = 0; l < SUB; l++) out[y + l] = Math.fround(d1 * (src[q + l] & 0x0f)) - min1;
      for (let l = 0; l < SUB; l++) out[y + SUB + l] = Math.fround(d2 * (src[q + l] >>> 4)) - min2;
      q += SUB;
      y += 2 * SUB;
    }
  }
}

/** Smallest f16 value >= v (v >= 0), so that 63 steps of it cover v * 63. */
function f16AtLeast(v: number): number {
  const bits = f32ToF16(v);
  return f16ToF32(bits) >= v ? f16ToF32(bits) : f16ToF32(bits + 1);
}

/**
 * Simple, valid Q4_K quantization (not ggml's iterative make_qkx2_quants
 * search): each sub-block's min is rounded to the 6-bit grid first, then its
 * scale is rounded UP so that the sub-block's range [min, max] is covered.
 * Error per element stays within about half a step plus half a min step.
 */
export function quantizeQ4_K(values: Float32Array): Uint8Array {
  const blocks = values.length / Q4_K_BLOCK;
  const out = new Uint8Array(blocks * Q4_K_BYTES);
  for (let b = 0; b < blocks; b++) quantizeBlock(values, b * Q4_K_BLOCK, out, b * Q4_K_BYTES);
  return out;
}

function quantizeBlock(values: Float32Array, x: number, out: Uint8Array, base: number): void {
  const low = new Float64Array(8);
  const high = new Float64Array(8);
  for (let s = 0; s < 8; s++) {
    let lo = 0; // mins are stored as non-negative offsets, so the grid always reaches 0
    let hi = -Infinity;
    for (let l = 0; l < SUB; l++) {
      const v = values[x + s * SUB + l];
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    low[s] = -lo;
    high[s] = hi;
  }
  const dmin = f16AtLeast(Math.max(...low) / 63);
  const mins = low.map((m) => (dmin > 0 ? Math.min(63, Math.round(m / dmin)) : 0));
  const steps = high.map((h, s) => Math.max(0, (h + dmin * mins[s]) / 15));
  const d = f16AtLeast(Math.max(...steps) / 63);
  const scales = steps.map((step) => (d > 0 ? Math.min(63, Math.ceil(step / d - 1e-9)) : 0));
  out[base] = f32ToF16(d) & 0xff;
  out[base + 1] = f32ToF16(d) >>> 8;
  out[base + 2] = f32ToF16(dmin) & 0xff;
  out[base + 3] = f32ToF16(dmin) >>> 8;
  packScaleMinK4(scales, mins, out, base + 4);
  const nibbles = new Uint8Array(Q4_K_BLOCK);
  for (let s = 0; s < 8; s++) {
    const step = Math.fround(d * scales[s]);
    const offset = Math.fround(dmin * mins[s]);
    for (let l = 0; l < SUB; l++) {
      const q = step > 0 ? Math.round((values[x + s * SUB + l] + offset) / step) : 0;
      nibbles[s * SUB + l] = Math.max(0, Math.min(15, q));
    }
  }
  for (let k = 0; k < 4; k++) {
    for (let l = 0; l < SUB; l++) out[base + 16 + k * SUB + l] = nibbles[2 * k * SUB + l] | (nibbles[(2 * k + 1) * SUB + l] << 4);
  }
}
