/**
 * Q4_0 (ggml block_q4_0, 18 bytes per 32 elements):
 *   d: f16 scale | qs: uint8[16]   element j is the low nibble of qs[j],
 *   element j + 16 the high nibble; value = d * (nibble - 8).
 */
import { readF16, writeF16 } from '../half.js';

export const Q4_0_BLOCK = 32;
export const Q4_0_BYTES = 18;

export function dequantizeQ4_0(src: Uint8Array, blocks: number, out: Float32Array, outOffset: number): void {
  for (let b = 0; b < blocks; b++) {
    const base = b * Q4_0_BYTES;
    const d = readF16(src, base);
    const y = outOffset + b * Q4_0_BLOCK;
    for (let j = 0; j < 16; j++) {
      const q = src[base + 2 + j];
      out[y + j] = ((q & 0x0f) - 8) * d;
      out[y + j + 16] = ((q >>> 4) - 8) * d;
    }
  }
}

/**
 * Bit-exact port of ggml's quantize_row_q4_0_ref: the value of largest
 * magnitude maps to -8 exactly, so its sign picks which end of [-8, 7] is used.
 */
export function quantizeQ4_0(values: Float32Array): Uint8Array {
  const blocks = values.length / Q4_0_BLOCK;
  const out = new Uint8Array(blocks * Q4_0_BYTES);
  for (let b = 0; b < blocks; b++) {
    const x = b * Q4_0_BLOCK;
    let amax = 0;
    let max = 0;
    for (let i = 0; i < Q4_0_BLOCK; i++) {
      const v = values[x + i];
      if (amax < Math.abs(v)) {
        amax = Math.abs(v);
        max = v;
      }
    }
    const d = Math.fround(max / -8);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    const base = b * Q4_0_BYTES;
    writeF16(out, base, d);
    for (let j = 0; j < 16; j++) {
      // (int8_t)(x0 + 8.5f): truncation of a value in [0.5, 16.5].
      const q0 = Math.min(15, Math.trunc(Math.fround(Math.fround(values[x + j] * id) + 8.5)));
      const q1 = Math.min(15, Math.trunc(Math.fround(Math.fround(values[x + j + 16] * id) + 8.5)));
      out[base + 2 + j] = q0 | (q1 << 4);
    }
  }
  return out;
}
