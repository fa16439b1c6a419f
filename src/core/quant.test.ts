import { test } from 'node:test';
import assert from 'node:assert/strict';
import { byteSize, DTYPE_LAYOUTS, type DType } from './dtype.js';
import { dequantize, quantize } from './quant.js';
import { TesseraError } from './errors.js';

/** Deterministic values in [-1, 1) with an outlier every 97 elements. */
function sampleValues(n: number, seed = 1): Float32Array {
  const out = new Float32Array(n);
  let s = seed;
  for (let i = 0; i < n; i++) {
    s = (Math.imul(s, 1103515245) + 12345) >>> 0;
    out[i] = (s / 2 ** 32 - 0.5) * 2 + (i % 97 === 5 ? 4 : 0);
  }
  return out;
}

function putF16(bytes: Uint8Array, at: number, bits: number): void {
  bytes[at] = bits & 0xff;
  bytes[at + 1] = bits >>> 8;
}

test('Q8_0: a hand-built block decodes to d * q', () => {
  const block = new Uint8Array(34);
  putF16(block, 0, 0x3800); // d = 0.5
  for (let i = 0; i < 32; i++) block[2 + i] = (i * 8 - 128) & 0xff;
  const out = dequantize('q8_0', block, 32);
  for (let i = 0; i < 32; i++) assert.equal(out[i], 0.5 * (i * 8 - 128));
});

test('Q4_0: a hand-built block decodes low nibbles to 0..15 and high nibbles to 16..31', () => {
  const block = new Uint8Array(18);
  putF16(block, 0, 0xc000); // d = -2
  for (let j = 0; j < 16; j++) block[2 + j] = j | ((15 - j) << 4);
  const out = dequantize('q4_0', block, 32);
  for (let j = 0; j < 16; j++) {
    assert.equal(out[j], (j - 8) * -2);
    assert.equal(out[j + 16], (15 - j - 8) * -2);
  }
});

test('Q4_K: a hand-built block with chosen 6-bit scales and mins decodes exactly', () => {
  const scale = [1, 2, 3, 4, 17, 33, 48, 63];
  const min = [0, 5, 10, 63, 16, 31, 47, 62];
  const block = new Uint8Array(144);
  putF16(block, 0, 0x3800); // d = 0.5
  putF16(block, 2, 0x3400); // dmin = 0.25
  // 12 scale bytes as ggml packs them: bytes 0-3 and 4-7 carry scales/mins 0-3 in their
  // low 6 bits and the top 2 bits of scales/mins 4-7; bytes 8-11 carry the low 4 bits of 4-7.
  for (let j = 0; j < 4; j++) {
    block[4 + j] = scale[j] | ((scale[j + 4] >> 4) << 6);
    block[8 + j] = min[j] | ((min[j + 4] >> 4) << 6);
    block[12 + j] = (scale[j + 4] & 15) | ((min[j + 4] & 15) << 4);
  }
  const nibble = (e: number): number => (e * 5 + 3) % 16;
  for (let e = 0; e < 256; e++) {
    const chunk = e >> 6;
    const within = e & 63;
    const byte = 16 + chunk * 32 + (within & 31);
    block[byte] |= within < 32 ? nibble(e) : nibble(e) << 4;
  }
  const out = dequantize('q4_k', block, 256);
  for (let e = 0; e < 256; e++) {
    const s = e >> 5;
    assert.equal(out[e], 0.5 * scale[s] * nibble(e) - 0.25 * min[s], `element ${e}`);
  }
});

test('Q6_K: a hand-built block with signed scales decodes exactly', () => {
  const block = new Uint8Array(210);
  putF16(block, 208, 0x3400); // d = 0.25, stored last
  const scale = (s: number): number => s - 8;
  for (let s = 0; s < 16; s++) block[192 + s] = scale(s) & 0xff;
  const level = (e: number): number => (e * 7 + 1) % 64;
  for (let e = 0; e < 256; e++) {
    const half = e >> 7;
    const l = e & 31;
    const k = (e & 127) >> 5;
    const low = level(e) & 15;
    const high = level(e) >> 4;
    block[half * 64 + l + 32 * (k & 1)] |= k >> 1 ? low << 4 : low;
    block[128 + half * 32 + l] |= high << (2 * k);
  }
  const out = dequantize('q6_k', block, 256);
  for (let e = 0; e < 256; e++) assert.equal(out[e], 0.25 * scale(e >> 4) * (level(e) - 32), `element ${e}`);
});

test('Q8_0 quantizes like ggml quantize_row_q8_0_ref: roundf, half away from zero', () => {
  const values = new Float32Array(32);
  values[0] = 127; // amax 127 -> d = 1, so the rest quantize to round(x)
  values[1] = 2.5;
  values[2] = -2.5;
  values[3] = 0.49;
  values[4] = -126.5;
  const block = quantize('q8_0', values);
  assert.deepEqual([block[0], block[1]], [0x00, 0x3c]); // d = 1.0 in f16
  const q = new Int8Array(block.buffer, 2, 32);
  assert.deepEqual([...q.slice(0, 5)], [127, 3, -3, 0, -127]);
});

test('Q4_0 quantizes like ggml quantize_row_q4_0_ref: signed max maps to -8, (int8)(x/d + 8.5)', () => {
  const values = new Float32Array(32);
  values[0] = -8; // the largest magnitude is negative: d = 1
  values[1] = 0.5; // 9.0 -> 9
  values[2] = -0.5; // 8.0 -> 8
  values[3] = 7.6; // 16.1 -> clamped to 15
  values[16] = 3.49; // 11.99 -> 11
  values[17] = -7.9; // 0.6 -> 0
  const block = quantize('q4_0', values);
  assert.deepEqual([block[0], block[1]], [0x00, 0x3c]);
  const nibbles = [...block.slice(2)].flatMap((b) => [b & 15, b >> 4]);
  const element = (i: number): number => (i < 16 ? nibbles[2 * i] : nibbles[2 * (i - 16) + 1]);
  assert.deepEqual([0, 1, 2, 3, 4, 16, 17].map(element), [0, 9, 8, 15, 8, 11, 0]);
  const decoded = dequantize('q4_0', block, 32);
  assert.deepEqual([...decoded.slice(0, 4)], [-8, 1, 0, 7]);
});

/** Largest |value| within each block of `size` values, per element. */
function blockAbsMax(values: Float32Array, size: number): Float32Array {
  const out = new Float32Array(values.length);
  for (let b = 0; b < values.length; b += size) {
    let m = 0;
    for (let i = b; i < b + size; i++) m = Math.max(m, Math.abs(values[i]));
    out.fill(m, b, b + size);
  }
  return out;
}

const ERROR_BOUNDS: Record<DType, (value: number, blockMax: number) => number> = {
  f32: () => 0,
  f16: (v) => Math.abs(v) * 2 ** -11 + 2 ** -25,
  bf16: (v) => Math.abs(v) * 2 ** -8,
  q8_0: (_, m) => (m / 127) * 0.5 + m * 2 ** -10,
  q4_0: (_, m) => m / 8 + m * 2 ** -9,
  // Grid step of a sub-block is at most about range/15 (+ one 6-bit quantum), plus half a min quantum.
  q4_k: (_, m) => ((2 * m) / 15) * 0.5 * (1 + 2 / 63) + m / 63,
  q6_k: (_, m) => (m / 32) * 1.05,
};

for (const dtype of Object.keys(DTYPE_LAYOUTS) as DType[]) {
  test(`${dtype}: quantize -> dequantize stays within the type's error bound`, () => {
    const values = sampleValues(4096, 7);
    const stored = quantize(dtype, values);
    assert.equal(stored.length, byteSize(dtype, values.length));
    const decoded = dequantize(dtype, stored, values.length);
    const blockMax = blockAbsMax(values, Math.max(DTYPE_LAYOUTS[dtype].blockSize, 32));
    for (let i = 0; i < values.length; i++) {
      const error = Math.abs(decoded[i] - values[i]);
      assert.ok(error <= ERROR_BOUNDS[dtype](values[i], blockMax[i]), `${dtype} element ${i}: ${values[i]} -> ${decoded[i]}`);
    }
    // Quantizing what was decoded is stable: the codec reproduces its own grid.
    if (dtype === 'q8_0' || dtype === 'q4_0' || dtype.startsWith('f') || dtype === 'bf16') {
      assert.deepEqual(quantize(dtype, decoded), stored);
    }
  });
}

test('all-zero blocks quantize to zeros without NaN', () => {
  for (const dtype of Object.keys(DTYPE_LAYOUTS) as DType[]) {
    const decoded = dequantize(dtype, quantize(dtype, new Float32Array(256)), 256);
    assert.ok(decoded.every((v) => v === 0), dtype);
  }
});

test('dequantize writes at an offset into a given array and reads unaligned sources', () => {
  const values = sampleValues(64, 3);
  for (const dtype of ['f32', 'f16', 'bf16', 'q8_0'] as DType[]) {
    const stored = quantize(dtype, values);
    const shifted = new Uint8Array(stored.length + 1);
    shifted.set(stored, 1);
    const out = new Float32Array(70).fill(9);
    dequantize(dtype, shifted.subarray(1), 64, out, 3);
    assert.deepEqual(out.subarray(3, 67), dequantize(dtype, stored, 64), dtype);
    assert.deepEqual([out[2], out[67]], [9, 9], `${dtype} wrote outside its range`);
  }
});

test('partial blocks and short sources are refused with coded errors', () => {
  const isInvalid = (e: unknown): boolean => e instanceof TesseraError && e.code === 'TESSERA_ERR_INVALID_ARGUMENT';
  assert.throws(() => quantize('q4_k', new Float32Array(255)), isInvalid);
  assert.throws(() => dequantize('q8_0', new Uint8Array(34), 33), isInvalid);
  assert.throws(() => dequantize('q6_k', new Uint8Array(209), 256), isInvalid);
  assert.throws(() => dequantize('f32', new Uint8Array(8), 2, new Float32Array(2), 1), isInvalid);
});
