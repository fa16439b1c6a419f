/**
 * IEEE half (f16) and bfloat16 conversions. f32 -> 16-bit rounds to nearest,
 * ties to even (as ggml's GGML_FP32_TO_FP16 and PyTorch do); NaN stays NaN.
 * f16 -> f32 goes through a 65536-entry table built once (256 KiB), which is
 * what makes dequantizing F16 weights cheap.
 * Array forms assume a little-endian host (x86, ARM), like the file formats.
 */

const scratch = new Float32Array(1);
const scratchBits = new Uint32Array(scratch.buffer);

function f32Bits(value: number): number {
  scratch[0] = value;
  return scratchBits[0];
}

/** f16 bits of a number, rounded to nearest even. */
export function f32ToF16(value: number): number {
  const x = f32Bits(value);
  const sign = (x >>> 16) & 0x8000;
  const exponent = (x >>> 23) & 0xff;
  const mantissa = x & 0x7fffff;
  if (exponent === 0xff) return sign | 0x7c00 | (mantissa !== 0 ? 0x200 | (mantissa >>> 13) : 0);
  const halfExponent = exponent - 112; // rebias 127 -> 15
  if (halfExponent >= 0x1f) return sign | 0x7c00;
  if (halfExponent <= 0) return sign | subnormalF16(mantissa | 0x800000, 14 - halfExponent);
  const bits = (halfExponent << 10) | (mantissa >>> 13);
  const rest = mantissa & 0x1fff;
  // A carry out of the mantissa correctly bumps the exponent (up to infinity).
  return sign | (rest > 0x1000 || (rest === 0x1000 && (bits & 1) !== 0) ? bits + 1 : bits);
}

/** `significand` (24 bits with the implicit 1) shifted right by `shift`, rounded to nearest even. */
function subnormalF16(significand: number, shift: number): number {
  if (shift > 24) return 0;
  const bits = significand >>> shift;
  const rest = significand & ((1 << shift) - 1);
  const half = 1 << (shift - 1);
  return rest > half || (rest === half && (bits & 1) !== 0) ? bits + 1 : bits;
}

function f16ToF32Slow(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const exponent = (h >>> 10) & 0x1f;
  const mantissa = h & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa !== 0 ? NaN : sign * Infinity;
  return sign * (1024 + mantissa) * 2 ** (exponent - 25);
}

/** f32 value of every f16 bit pattern. */
const F16_TABLE: Float32Array = (() => {
  const table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) table[h] = f16ToF32Slow(h);
  return table;
})();

export function f16ToF32(bits: number): number {
  return F16_TABLE[bits & 0xffff];
}

/** bf16 bits of a number, rounded to nearest even; NaN stays a (quiet) NaN. */
export function f32ToBf16(value: number): number {
  const x = f32Bits(value);
  if ((x & 0x7fffffff) > 0x7f800000) return ((x >>> 16) | 0x40) & 0xffff;
  return ((x + 0x7fff + ((x >>> 16) & 1)) >>> 16) & 0xffff;
}

export function bf16ToF32(bits: number): number {
  scratchBits[0] = (bits & 0xffff) << 16;
  return scratch[0];
}

export function f32ArrayToF16(src: ArrayLike<number>, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  for (let i = 0; i < src.length; i++) out[i] = f32ToF16(src[i]);
  return out;
}

export function f16ArrayToF32(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  for (let i = 0; i < src.length; i++) out[i] = F16_TABLE[src[i]];
  return out;
}

export function f32ArrayToBf16(src: ArrayLike<number>, out: Uint16Array = new Uint16Array(src.length)): Uint16Array {
  for (let i = 0; i < src.length; i++) out[i] = f32ToBf16(src[i]);
  return out;
}

export function bf16ArrayToF32(src: Uint16Array, out: Float32Array = new Float32Array(src.length)): Float32Array {
  const bits = new Uint32Array(out.buffer, out.byteOffset, out.length);
  for (let i = 0; i < src.length; i++) bits[i] = src[i] << 16;
  return out;
}

/** f16 at byte `offset` of little-endian bytes (any alignment), as f32. */
export function readF16(bytes: Uint8Array, offset: number): number {
  return F16_TABLE[bytes[offset] | (bytes[offset + 1] << 8)];
}

export function writeF16(bytes: Uint8Array, offset: number, value: number): void {
  const h = f32ToF16(value);
  bytes[offset] = h & 0xff;
  bytes[offset + 1] = h >>> 8;
}
