/**
 * Stored bytes <-> f32 for every Tessera dtype. Block layouts follow ggml
 * (ggml-common.h) byte for byte, so GGUF tensors are used as they lie on disk.
 * Q8_0 and Q4_0 quantize exactly as ggml's reference code; Q4_K and Q6_K use
 * a simpler scale search (see quant/q4-k.ts, quant/q6-k.ts): valid blocks any
 * ggml reader decodes, a little less accurate than llama-quantize's.
 * Multi-byte values are little-endian; the host is assumed little-endian.
 */
import { byteSize, DTYPE_LAYOUTS, type DType } from './dtype.js';
import { TesseraError } from './errors.js';
import { bf16ArrayToF32, f16ArrayToF32, f32ArrayToBf16, f32ArrayToF16 } from './half.js';
import { dequantizeQ4_0, quantizeQ4_0 } from './quant/q4-0.js';
import { dequantizeQ4_K, quantizeQ4_K } from './quant/q4-k.js';
import { dequantizeQ6_K, quantizeQ6_K } from './quant/q6-k.js';
import { dequantizeQ8_0, quantizeQ8_0 } from './quant/q8-0.js';

function checkElements(dtype: DType, elements: number): void {
  const { blockSize } = DTYPE_LAYOUTS[dtype];
  if (!Number.isInteger(elements) || elements < 0 || elements % blockSize !== 0) {
    throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `${elements} elements are not a whole number of ${dtype} blocks of ${blockSize}`);
  }
}

/** A typed view of `bytes` when aligned, else an aligned copy. */
function view<T>(bytes: Uint8Array, width: number, make: (buffer: ArrayBufferLike, offset: number, length: number) => T): T {
  const length = bytes.length / width;
  if (bytes.byteOffset % width === 0) return make(bytes.buffer, bytes.byteOffset, length);
  const copy = bytes.slice();
  return make(copy.buffer, 0, length);
}

/**
 * Decodes `elements` values stored as `dtype` at the start of `src` into
 * `out[outOffset ...]` (a new array when `out` is omitted).
 */
export function dequantize(dtype: DType, src: Uint8Array, elements: number, out?: Float32Array, outOffset = 0): Float32Array {
  checkElements(dtype, elements);
  const bytes = byteSize(dtype, elements);
  if (src.length < bytes) {
    throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `${elements} ${dtype} elements need ${bytes} bytes, got ${src.length}`);
  }
  const target = out ?? new Float32Array(outOffset + elements);
  if (outOffset + elements > target.length) {
    throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `output of ${target.length} floats has no room for ${elements} at offset ${outOffset}`);
  }
  const data = src.subarray(0, bytes);
  const blocks = elements / DTYPE_LAYOUTS[dtype].blockSize;
  switch (dtype) {
    case 'f32':
      target.set(view(data, 4, (b, o, n) => new Float32Array(b, o, n)), outOffset);
      break;
    case 'f16':
      f16ArrayToF32(view(data, 2, (b, o, n) => new Uint16Array(b, o, n)), target.subarray(outOffset, outOffset + elements));
      break;
    case 'bf16':
      bf16ArrayToF32(view(data, 2, (b, o, n) => new Uint16Array(b, o, n)), target.subarray(outOffset, outOffset + elements));
      break;
    case 'q8_0': dequantizeQ8_0(data, blocks, target, outOffset); break;
    case 'q4_0': dequantizeQ4_0(data, blocks, target, outOffset); break;
    case 'q4_k': dequantizeQ4_K(data, blocks, target, outOffset); break;
    case 'q6_k': dequantizeQ6_K(data, blocks, target, outOffset); break;
  }
  return target;
}

/** Encodes f32 values as `dtype`'s stored bytes; the length must be whole blocks. */
export function quantize(dtype: DType, values: Float32Array): Uint8Array {
  checkElements(dtype, values.length);
  switch (dtype) {
    case 'f32':
      return new Uint8Array(values.slice().buffer);
    case 'f16':
      return new Uint8Array(f32ArrayToF16(values).buffer);
    case 'bf16':
      return new Uint8Array(f32ArrayToBf16(values).buffer);
    case 'q8_0': return quantizeQ8_0(values);
    case 'q4_0': return quantizeQ4_0(values);
    case 'q4_k': return quantizeQ4_K(values);
    case 'q6_k': return quantizeQ6_K(values);
  }
}
