/**
 * WGSL helpers shared by the kernels: reading bytes, halves and bf16 out of
 * u32 words (weights keep their file bytes; shader-f16 is not on every
 * adapter), and exact f16 <-> f32 conversions in integer arithmetic.
 *
 * Why not unpack2x16float / pack2x16float: WGSL leaves the packing of values
 * outside the f16 range indeterminate, and implementations may flush
 * subnormals. These functions give the bits of src/core/half.ts (round to
 * nearest even, subnormals kept, overflow to infinity, NaN stays NaN) on
 * every adapter.
 */

/** Byte, 16-bit and unaligned 32-bit reads from `array<u32>` named `name`; `off` in bytes. */
export function byteReaders(name: string, prefix: string): string {
  return /* wgsl */ `
fn ${prefix}Byte(off: u32) -> u32 {
  return (${name}[off >> 2u] >> ((off & 3u) * 8u)) & 0xffu;
}
fn ${prefix}I8(off: u32) -> i32 {
  return (i32(${prefix}Byte(off)) << 24u) >> 24u;
}
// off must be even.
fn ${prefix}U16(off: u32) -> u32 {
  return (${name}[off >> 2u] >> ((off & 2u) * 8u)) & 0xffffu;
}
// Four bytes at an even offset.
fn ${prefix}Word(off: u32) -> u32 {
  let i = off >> 2u;
  if ((off & 2u) == 0u) { return ${name}[i]; }
  return (${name}[i] >> 16u) | (${name}[i + 1u] << 16u);
}
`;
}

export const HALF_CONVERSIONS = /* wgsl */ `
// Exact value of f16 bits h (low 16 bits).
fn halfToF32(h: u32) -> f32 {
  let sign = (h & 0x8000u) << 16u;
  let exponent = (h >> 10u) & 0x1fu;
  let mantissa = h & 0x3ffu;
  if (exponent == 0u) {
    // Zero or subnormal: mantissa · 2^-24, exact in f32.
    let magnitude = f32(mantissa) * 5.9604644775390625e-8;
    return bitcast<f32>(bitcast<u32>(magnitude) | sign);
  }
  if (exponent == 31u) {
    return bitcast<f32>(sign | 0x7f800000u | (mantissa << 13u));
  }
  return bitcast<f32>(sign | ((exponent + 112u) << 23u) | (mantissa << 13u));
}

fn bf16ToF32(b: u32) -> f32 {
  return bitcast<f32>((b & 0xffffu) << 16u);
}

// f16 bits of v, rounded to nearest even (as f32ToF16 in src/core/half.ts).
fn f32ToHalf(v: f32) -> u32 {
  let x = bitcast<u32>(v);
  let sign = (x >> 16u) & 0x8000u;
  let exponent = i32((x >> 23u) & 0xffu);
  let mantissa = x & 0x7fffffu;
  if (exponent == 255) {
    return sign | 0x7c00u | select(0u, 0x200u | (mantissa >> 13u), mantissa != 0u);
  }
  let halfExponent = exponent - 112;
  if (halfExponent >= 31) { return sign | 0x7c00u; }
  if (halfExponent <= 0) {
    let shift = u32(14 - halfExponent);
    if (shift > 24u) { return sign; }
    let significand = mantissa | 0x800000u;
    let bits = significand >> shift;
    let rest = significand & ((1u << shift) - 1u);
    let half = 1u << (shift - 1u);
    let up = rest > half || (rest == half && (bits & 1u) != 0u);
    return sign | (bits + select(0u, 1u, up));
  }
  let bits = (u32(halfExponent) << 10u) | (mantissa >> 13u);
  let rest = mantissa & 0x1fffu;
  let up = rest > 0x1000u || (rest == 0x1000u && (bits & 1u) != 0u);
  return sign | (bits + select(0u, 1u, up));
}
`;
