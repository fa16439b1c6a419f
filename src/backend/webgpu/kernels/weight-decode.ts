/**
 * WGSL decoding of one weight row's elements from its file bytes, per dtype.
 * Each kernel that reads weights (matmul, embed) includes the decoder of its
 * dtype, so embed / readRows and matmul see the same values, and those are
 * bit for bit the values of the CPU decoders in src/core/quant/: every
 * product below is exact in f32 or rounded once, as there.
 *
 * The weight buffer is `weight: array<u32>`; `rb` is the byte offset of the
 * row in it (rows are whole blocks, so rb is even for every dtype and a
 * multiple of 4 for f32). `weights4(rb, k)` decodes elements k..k+3 (k a
 * multiple of 4); `weightAt(rb, k)` one element.
 */
import type { DType } from '../../../core/dtype.js';
import { HALF_CONVERSIONS, byteReaders } from './wgsl-common.js';

const Q4_K_SCALES = /* wgsl */ `
// (scale, min) of sub-block j of a Q4_K block whose 12 scale bytes start at s.
fn scaleMinK4(s: u32, j: u32) -> vec2<u32> {
  if (j < 4u) {
    return vec2<u32>(wByte(s + j) & 63u, wByte(s + j + 4u) & 63u);
  }
  let scale = (wByte(s + j + 4u) & 0x0fu) | ((wByte(s + j - 4u) >> 6u) << 4u);
  let mn = (wByte(s + j + 4u) >> 4u) | ((wByte(s + j) >> 6u) << 4u);
  return vec2<u32>(scale, mn);
}
`;

const DECODERS: Record<DType, string> = {
  f32: /* wgsl */ `
fn weightAt(rb: u32, k: u32) -> f32 { return bitcast<f32>(weight[(rb >> 2u) + k]); }
fn weights4(rb: u32, k: u32) -> vec4<f32> {
  let i = (rb >> 2u) + k;
  return vec4<f32>(bitcast<f32>(weight[i]), bitcast<f32>(weight[i + 1u]), bitcast<f32>(weight[i + 2u]), bitcast<f32>(weight[i + 3u]));
}
`,
  f16: /* wgsl */ `
fn weightAt(rb: u32, k: u32) -> f32 { return halfToF32(wU16(rb + 2u * k)); }
fn weights4(rb: u32, k: u32) -> vec4<f32> {
  let a = wWord(rb + 2u * k);
  let b = wWord(rb + 2u * k + 4u);
  return vec4<f32>(halfToF32(a), halfToF32(a >> 16u), halfToF32(b), halfToF32(b >> 16u));
}
`,
  bf16: /* wgsl */ `
fn weightAt(rb: u32, k: u32) -> f32 { return bf16ToF32(wU16(rb + 2u * k)); }
fn weights4(rb: u32, k: u32) -> vec4<f32> {
  let a = wWord(rb + 2u * k);
  let b = wWord(rb + 2u * k + 4u);
  return vec4<f32>(bf16ToF32(a), bf16ToF32(a >> 16u), bf16ToF32(b), bf16ToF32(b >> 16u));
}
`,
  q8_0: /* wgsl */ `
fn weights4(rb: u32, k: u32) -> vec4<f32> {
  let off = rb + (k >> 5u) * 34u;
  let d = halfToF32(wU16(off));
  let q = wWord(off + 2u + (k & 31u));
  let v = vec4<i32>(i32(q << 24u), i32(q << 16u), i32(q << 8u), i32(q)) >> vec4<u32>(24u);
  return d * vec4<f32>(v);
}
fn weightAt(rb: u32, k: u32) -> f32 {
  let off = rb + (k >> 5u) * 34u;
  return halfToF32(wU16(off)) * f32(wI8(off + 2u + (k & 31u)));
}
`,
  q4_0: /* wgsl */ `
fn weights4(rb: u32, k: u32) -> vec4<f32> {
  let off = rb + (k >> 5u) * 18u;
  let d = halfToF32(wU16(off));
  let i = k & 31u;
  let q = wWord(off + 2u + (i & 15u));
  let shift = select(0u, 4u, i >= 16u);
  let n = (vec4<u32>(q, q >> 8u, q >> 16u, q >> 24u) >> vec4<u32>(shift)) & vec4<u32>(15u);
  return vec4<f32>(vec4<i32>(n) - vec4<i32>(8)) * d;
}
fn weightAt(rb: u32, k: u32) -> f32 { return weights4(rb, k & ~3u)[k & 3u]; }
`,
  q4_k: /* wgsl */ `${Q4_K_SCALES}
fn weights4(rb: u32, k: u32) -> vec4<f32> {
  let off = rb + (k >> 8u) * 144u;
  let d = halfToF32(wU16(off));
  let dmin = halfToF32(wU16(off + 2u));
  let i = k & 255u;
  let chunk = i >> 6u;
  let l = i & 63u;
  let sub = 2u * chunk + select(0u, 1u, l >= 32u);
  let sm = scaleMinK4(off + 4u, sub);
  let d1 = d * f32(sm.x);
  let m1 = dmin * f32(sm.y);
  let q = wWord(off + 16u + 32u * chunk + (l & 31u));
  let shift = select(0u, 4u, l >= 32u);
  let n = (vec4<u32>(q, q >> 8u, q >> 16u, q >> 24u) >> vec4<u32>(shift)) & vec4<u32>(15u);
  // d1 · n is exact in f32 (11 + 6 + 4 bits), so one rounding, as the CPU decoder.
  return d1 * vec4<f32>(n) - vec4<f32>(m1);
}
fn weightAt(rb: u32, k: u32) -> f32 { return weights4(rb, k & ~3u)[k & 3u]; }
`,
  q6_k: /* wgsl */ `
fn weights4(rb: u32, k: u32) -> vec4<f32> {
  let off = rb + (k >> 8u) * 210u;
  let d = halfToF32(wU16(off + 208u));
  let i = k & 255u;
  let half = i >> 7u;
  let quarter = (i & 127u) >> 5u;
  let l = i & 31u;
  let ql = wWord(off + half * 64u + l + select(0u, 32u, (quarter & 1u) == 1u));
  let qh = wWord(off + 128u + half * 32u + l);
  let lowShift = select(0u, 4u, quarter >= 2u);
  let highShift = 2u * quarter;
  let lo = (vec4<u32>(ql, ql >> 8u, ql >> 16u, ql >> 24u) >> vec4<u32>(lowShift)) & vec4<u32>(15u);
  let hi = (vec4<u32>(qh, qh >> 8u, qh >> 16u, qh >> 24u) >> vec4<u32>(highShift)) & vec4<u32>(3u);
  let q = vec4<i32>(lo | (hi << vec4<u32>(4u))) - vec4<i32>(32);
  let scale = d * f32(wI8(off + 192u + half * 8u + (l >> 4u) + 2u * quarter));
  return scale * vec4<f32>(q);
}
fn weightAt(rb: u32, k: u32) -> f32 { return weights4(rb, k & ~3u)[k & 3u]; }
`,
};

/** The helpers and decoder for `dtype`, reading from `weight: array<u32>`. */
export function weightDecoder(dtype: DType): string {
  return `${byteReaders('weight', 'w')}${HALF_CONVERSIONS}${DECODERS[dtype]}`;
}

/**
 * A second decoder in the same shader (HALF_CONVERSIONS already there): it
 * reads `name: array<u32>` and its functions end in `suffix`
 * (weights4B, weightAtB, ...). The same code as weightDecoder's, renamed.
 */
export function namedWeightDecoder(dtype: DType, name: string, suffix: string): string {
  const renamed = DECODERS[dtype]
    .replace(/\bweight\[/g, `${name}[`)
    .replace(/\bw(Byte|I8|U16|Word)\(/g, `w${suffix}$1(`)
    .replace(/\b(weights4|weightAt|scaleMinK4)\(/g, `$1${suffix}(`);
  return `${byteReaders(name, `w${suffix}`)}${renamed}`;
}
