/**
 * Number formats the planner prices: how many bytes an element of a weight
 * or of the KV cache takes, and which of a device's compute rates multiplies
 * it. GGUF block formats carry their scales inside the block, so their bytes
 * per element are the block's bytes over its elements (Q8_0: 34 / 32).
 */
import { TesseraError } from '../core/errors.js';

export const WEIGHT_DTYPES = ['bf16', 'fp16', 'f32', 'fp8', 'int8', 'fp4', 'q8_0', 'q4_0', 'q4_k_m'] as const;
export type WeightDtype = (typeof WEIGHT_DTYPES)[number];

export const KV_DTYPES = ['f32', 'bf16', 'fp16', 'fp8', 'int8'] as const;
export type KvDtype = (typeof KV_DTYPES)[number];

/**
 * The multiply a device runs for a format: `f16` (bf16/fp16 tensor or vector
 * units), `fp8`, `fp4`, or `int8` (integer dot products, which the CPU
 * kernels use for GGUF blocks). A device without a rate for a class falls
 * back to its `f16` rate (weights are then widened before the multiply).
 */
export type ComputeClass = 'f16' | 'fp8' | 'fp4' | 'int8';

/** Tensors a Q4_K_M file stores at 6 bits (llama.cpp's mix, as `tessera synth` writes it). */
export type TensorRole = 'attention-qkv' | 'attention-v' | 'attention-output' | 'ffn-up' | 'ffn-down' | 'embedding' | 'head';

const Q4_K_BYTES = 144 / 256;
const Q6_K_BYTES = 210 / 256;

/** Bytes per element of a weight in `dtype`; Q4_K_M depends on the tensor's role. */
export function weightBytes(dtype: WeightDtype, role: TensorRole = 'ffn-up'): number {
  switch (dtype) {
    case 'bf16':
    case 'fp16':
      return 2;
    case 'f32':
      return 4;
    case 'fp8':
    case 'int8':
      return 1;
    case 'fp4':
      // NVFP4: 4-bit values with one 8-bit scale per 16.
      return 0.5 + 1 / 16;
    case 'q8_0':
      return 34 / 32;
    case 'q4_0':
      return 18 / 32;
    case 'q4_k_m':
      return role === 'ffn-down' || role === 'attention-v' || role === 'head' ? Q6_K_BYTES : Q4_K_BYTES;
  }
}

export function weightComputeClass(dtype: WeightDtype): ComputeClass {
  switch (dtype) {
    case 'bf16':
    case 'fp16':
    case 'f32':
      return 'f16';
    case 'fp8':
      return 'fp8';
    case 'fp4':
      return 'fp4';
    case 'int8':
    case 'q8_0':
    case 'q4_0':
    case 'q4_k_m':
      return 'int8';
  }
}

export function kvBytes(dtype: KvDtype): number {
  switch (dtype) {
    case 'f32':
      return 4;
    case 'bf16':
    case 'fp16':
      return 2;
    case 'fp8':
    case 'int8':
      return 1;
  }
}

export function parseWeightDtype(text: string): WeightDtype {
  const found = WEIGHT_DTYPES.find((name) => name === text.toLowerCase());
  if (!found) throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `--weights-dtype must be one of ${WEIGHT_DTYPES.join(', ')}, got "${text}"`);
  return found;
}

export function parseKvDtype(text: string): KvDtype {
  const normalized = text.toLowerCase() === 'f16' ? 'fp16' : text.toLowerCase();
  const found = KV_DTYPES.find((name) => name === normalized);
  if (!found) throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `--kv-dtype must be one of ${KV_DTYPES.join(', ')}, got "${text}"`);
  return found;
}
