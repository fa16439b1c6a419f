/**
 * Q8_0 (ggml block_q8_0, 34 bytes per 32 elements):
 *   d: f16 scale | qs: int8[32]           value = d * qs[i]
 */
import { readF16, writeF16 } from '../half.js';

export const Q8_0_BLOCK = 32;
export const Q8_0_BYTES = 34;

export function dequantizeQ8_0(src: Uint8Array, blocks: number, out: Float32Array, outOffset: number): void {
  for (let b = 0; b < blocks; b++) {
    const base = b * Q8_0_BYTES;
    const d = readF16(src, base);
    const y = outOffset + b * Q8_0_BLOCK;
    for (let i = 0; i < Q8_0_BLOCK; i++) out[y + i] = d * ((src[base + 2 + i] << 24) >> 24);
  }
}

/** C roundf: half away from zero. */
export function roundAway(x: number): number {
  return x < 0 ? -Math.floor(-x + 0.5) : Math.floor(x + 0.5);
}

/** Bit-exact port of ggml's quantize_row_q8_0_ref (f32 arithmetic emulated with Math.fround). */
export function quantizeQ8_0(values: Float32Array): Uint8Array {
  const blocks = values.length / Q8_0_BLOCK;
  const out = new Uint8Array(blocks * Q8_0_BYTES);
  for (let b = 0; b < blocks; b++) {
    const x = b * Q8_0_BLOCK;
    let amax = 0;
    for (let i = 0; i < Q8_0_BLOCK; i++) amax = Math.max(amax, Math.abs(values[x + i]));
    const d = Math.fround(amax / 127);
    const id = d !== 0 ? Math.fround(1 / d) : 0;
    const base = b * Q8_0_BYTES;
    writeF16(out, base, d);
    for (let i = 0; i < Q8_0_BLOCK; i++) out[base + 2 + i] = roundAway(Math.fround(values[x + i] * id)) & 0xff;
  }
  return out;
}
