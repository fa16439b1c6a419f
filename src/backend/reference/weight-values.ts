/**
 * Decoding stored tensor bytes to float32 values. Float types are decoded
 * here; block-quantized types go through core/quant so the reference backend
 * and the format readers agree on every block layout.
 */
import { DTYPE_LAYOUTS, byteSize, type DType } from '../../core/dtype.js';
import { TesseraError, check } from '../../core/errors.js';

const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/** `elements` consecutive values of a tensor of `dtype` stored in `bytes`. */
export function decodeValues(dtype: DType, bytes: Uint8Array, elements: number): Float32Array {
  check(
    bytes.byteLength === byteSize(dtype, elements),
    'TESSERA_ERR_TRUNCATED',
    `a ${dtype} tensor of ${elements} elements needs ${byteSize(dtype, elements)} bytes but got ${bytes.byteLength}; the model file may be truncated or corrupt`,
  );
  switch (dtype) {
    case 'f32':
      return decodeF32(bytes, elements);
    case 'f16':
      return decodeF16(bytes, elements);
    case 'bf16':
      return decodeBf16(bytes, elements);
    default:
      return decodeBlocks(dtype, bytes, elements);
  }
}

function decodeF32(bytes: Uint8Array, elements: number): Float32Array {
  if (littleEndian) return new Float32Array(bytes.slice().buffer, 0, elements);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Float32Array(elements);
  for (let i = 0; i < elements; i++) out[i] = view.getFloat32(i * 4, true);
  return out;
}

function decodeF16(bytes: Uint8Array, elements: number): Float32Array {
  const out = new Float32Array(elements);
  for (let i = 0; i < elements; i++) out[i] = halfToFloat(bytes[2 * i] | (bytes[2 * i + 1] << 8));
  return out;
}

function decodeBf16(bytes: Uint8Array, elements: number): Float32Array {
  const bits = new Uint32Array(elements);
  for (let i = 0; i < elements; i++) bits[i] = ((bytes[2 * i] | (bytes[2 * i + 1] << 8)) << 16) >>> 0;
  return new Float32Array(bits.buffer);
}

/** IEEE half (as its 16 bits) to a number; exact. */
export function halfToFloat(half: number): number {
  const sign = half & 0x8000 ? -1 : 1;
  const exponent = (half >> 10) & 0x1f;
  const mantissa = half & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa === 0 ? sign * Infinity : NaN;
  return sign * (1 + mantissa / 1024) * 2 ** (exponent - 15);
}

function decodeBlocks(dtype: DType, bytes: Uint8Array, elements: number): Float32Array {
  void bytes;
  void elements;
  throw new TesseraError(
    'TESSERA_ERR_UNSUPPORTED_DTYPE',
    `the reference backend cannot decode ${dtype} yet (block size ${DTYPE_LAYOUTS[dtype].blockSize}); convert the model to f32/f16`,
  );
}
