/**
 * Element types of stored tensors. Quantized types store `blockSize`
 * consecutive elements of a row in `blockBytes` bytes; rows are always a whole
 * number of blocks.
 */
export type DType = 'f32' | 'f16' | 'bf16' | 'q8_0' | 'q4_0' | 'q4_k' | 'q6_k';

export interface DTypeLayout {
  readonly blockSize: number;
  readonly blockBytes: number;
}

export const DTYPE_LAYOUTS: Readonly<Record<DType, DTypeLayout>> = {
  f32: { blockSize: 1, blockBytes: 4 },
  f16: { blockSize: 1, blockBytes: 2 },
  bf16: { blockSize: 1, blockBytes: 2 },
  q8_0: { blockSize: 32, blockBytes: 34 },
  q4_0: { blockSize: 32, blockBytes: 18 },
  q4_k: { blockSize: 256, blockBytes: 144 },
  q6_k: { blockSize: 256, blockBytes: 210 },
};

export function isQuantized(dtype: DType): boolean {
  return DTYPE_LAYOUTS[dtype].blockSize > 1;
}

/** Bytes of `elements` consecutive elements; `elements` must be whole blocks. */
export function byteSize(dtype: DType, elements: number): number {
  const layout = DTYPE_LAYOUTS[dtype];
  return (elements / layout.blockSize) * layout.blockBytes;
}
