import { test } from 'node:test';
import assert from 'node:assert/strict';
import {
  bf16ArrayToF32,
  bf16ToF32,
  f16ArrayToF32,
  f16ToF32,
  f32ArrayToBf16,
  f32ArrayToF16,
  f32ToBf16,
  f32ToF16,
} from './half.js';

test('f32 -> f16 rounds to nearest even, with subnormals, overflow, infinities and NaN', () => {
  const cases: Array<[number, number]> = [
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff], // largest finite
    [65519, 0x7bff], // just below the tie with infinity
    [65520, 0x7c00], // the tie rounds to even = infinity
    [1e6, 0x7c00],
    [-1e6, 0xfc00],
    [Infinity, 0x7c00],
    [-Infinity, 0xfc00],
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -25, 0x0000], // tie between 0 and the smallest subnormal: even
    [1.5 * 2 ** -25, 0x0001],
    [3 * 2 ** -25, 0x0002], // 1.5 ulps: tie to even
    [5 * 2 ** -25, 0x0002], // 2.5 ulps: tie to even
    [1e-8, 0x0000],
    [-1e-8, 0x8000],
    [1 + 2 ** -11, 0x3c00], // tie: stays even
    [1 + 3 * 2 ** -11, 0x3c02], // tie: rounds up to even
    [1 + 2 ** -11 + 2 ** -20, 0x3c01], // above the tie
    [2 ** -14 - 2 ** -25, 0x0400], // largest subnormal + half ulp rounds up into the normals
  ];
  for (const [value, bits] of cases) {
    assert.equal(f32ToF16(value), bits, `f32ToF16(${value}) = 0x${f32ToF16(value).toString(16)}, want 0x${bits.toString(16)}`);
  }
  const nan = f32ToF16(NaN);
  assert.equal(nan & 0x7c00, 0x7c00);
  assert.notEqual(nan & 0x3ff, 0);
});

test('f16 -> f32 is exact and inverts f32 -> f16 for every bit pattern', () => {
  assert.equal(f16ToF32(0x3c00), 1);
  assert.equal(f16ToF32(0x0001), 2 ** -24);
  assert.equal(f16ToF32(0x7bff), 65504);
  assert.equal(f16ToF32(0xfc00), -Infinity);
  assert.ok(Object.is(f16ToF32(0x8000), -0));
  assert.ok(Number.isNaN(f16ToF32(0x7e00)));
  for (let bits = 0; bits < 65536; bits++) {
    const value = f16ToF32(bits);
    if (Number.isNaN(value)) continue;
    assert.equal(f32ToF16(value), bits);
  }
});

test('bf16 rounds to nearest even and keeps NaN a NaN', () => {
  assert.equal(f32ToBf16(1), 0x3f80);
  assert.equal(f32ToBf16(-1), 0xbf80);
  assert.equal(f32ToBf16(1 + 2 ** -8), 0x3f80); // tie, even
  assert.equal(f32ToBf16(1 + 3 * 2 ** -8), 0x3f82); // tie, up to even
  assert.equal(f32ToBf16(1 + 2 ** -8 + 2 ** -12), 0x3f81);
  assert.equal(f32ToBf16(Infinity), 0x7f80);
  assert.equal(f32ToBf16(3.4e38), 0x7f80); // rounds past the largest finite bf16
  assert.ok(Number.isNaN(bf16ToF32(f32ToBf16(NaN))));
  assert.equal(bf16ToF32(0x3f80), 1);
  assert.equal(bf16ToF32(0xc040), -3);
  assert.equal(bf16ToF32(0x0001), 2 ** -133); // bf16 subnormal
});

test('array conversions agree with the scalar ones', () => {
  const values = new Float32Array([0, 1.1, -2.7, 65519, 1e-7, -1e30, 3.14159, 2 ** -24]);
  const f16 = f32ArrayToF16(values);
  const bf16 = f32ArrayToBf16(values);
  const backF16 = f16ArrayToF32(f16);
  const backBf16 = bf16ArrayToF32(bf16);
  for (let i = 0; i < values.length; i++) {
    assert.equal(f16[i], f32ToF16(values[i]));
    assert.equal(bf16[i], f32ToBf16(values[i]));
    assert.equal(backF16[i], f16ToF32(f16[i]));
    assert.equal(backBf16[i], bf16ToF32(bf16[i]));
  }
});
