/**
 * GGUF file structures shared by the reader and the writer, and the mapping
 * between ggml tensor type ids and Tessera dtypes.
 * Spec: ggml/docs/gguf.md (v2 and v3 share a layout; v1 used 32-bit counts).
 */
import type { DType } from '../core/dtype.js';

export const GGUF_MAGIC = 0x46554747; // "GGUF" read as a little-endian uint32
export const GGUF_DEFAULT_ALIGNMENT = 32;
/** ggml never stores tensors of more dimensions than this (GGML_MAX_DIMS). */
export const GGUF_MAX_DIMS = 4;

export enum GgufValueType {
  UINT8 = 0,
  INT8 = 1,
  UINT16 = 2,
  INT16 = 3,
  UINT32 = 4,
  INT32 = 5,
  FLOAT32 = 6,
  BOOL = 7,
  STRING = 8,
  ARRAY = 9,
  UINT64 = 10,
  INT64 = 11,
  FLOAT64 = 12,
}

/**
 * A metadata value. UINT64/INT64 read as `number` when the value is a safe
 * integer (|v| < 2^53, which covers every count and id in real files) and as
 * `bigint` otherwise; the writer accepts either. Arrays are plain JS arrays
 * (nested arrays nest).
 */
export type GgufValue = number | bigint | boolean | string | GgufValue[];

/** Declared type of a metadata value; `arrayType` is the element type of an ARRAY. */
export interface GgufValueTypeInfo {
  type: GgufValueType;
  arrayType?: GgufValueType;
}

export interface GgufTensorInfo {
  name: string;
  dtype: DType;
  /** Row-major, outermost first: ne reversed. A matrix is [rows, cols]. */
  shape: number[];
  /** Absolute file offset of the first byte. */
  offset: number;
  byteLength: number;
}

export interface GgufHeader {
  version: number;
  metadata: Map<string, GgufValue>;
  /** Declared type of every metadata value (needed to write a file back unchanged). */
  types: Map<string, GgufValueTypeInfo>;
  tensors: GgufTensorInfo[];
  alignment: number;
  /** Absolute offset of the tensor data section. */
  dataOffset: number;
  fileSize: number;
}

export interface GgufMetadataEntry {
  key: string;
  type: GgufValueType;
  value: GgufValue;
  /** Element type when `type` is ARRAY (nested arrays: ARRAY, with inner types inferred). */
  arrayType?: GgufValueType;
}

export interface GgufWriteTensor {
  name: string;
  dtype: DType;
  /** Row-major, outermost first. */
  shape: number[];
  /** Raw stored bytes; called once, in file order, so big models stream. */
  data: () => Uint8Array;
}

/** ggml_type names by id (ggml.h), including ids that were removed (kept so errors can name them). */
export const GGML_TYPE_NAMES: Readonly<Record<number, string>> = {
  0: 'F32',
  1: 'F16',
  2: 'Q4_0',
  3: 'Q4_1',
  4: 'Q4_2 (removed)',
  5: 'Q4_3 (removed)',
  6: 'Q5_0',
  7: 'Q5_1',
  8: 'Q8_0',
  9: 'Q8_1',
  10: 'Q2_K',
  11: 'Q3_K',
  12: 'Q4_K',
  13: 'Q5_K',
  14: 'Q6_K',
  15: 'Q8_K',
  16: 'IQ2_XXS',
  17: 'IQ2_XS',
  18: 'IQ3_XXS',
  19: 'IQ1_S',
  20: 'IQ4_NL',
  21: 'IQ3_S',
  22: 'IQ2_S',
  23: 'IQ4_XS',
  24: 'I8',
  25: 'I16',
  26: 'I32',
  27: 'I64',
  28: 'F64',
  29: 'IQ1_M',
  30: 'BF16',
  31: 'Q4_0_4_4 (removed)',
  32: 'Q4_0_4_8 (removed)',
  33: 'Q4_0_8_8 (removed)',
  34: 'TQ1_0',
  35: 'TQ2_0',
  36: 'IQ4_NL_4_4 (removed)',
  37: 'IQ4_NL_4_8 (removed)',
  38: 'IQ4_NL_8_8 (removed)',
  39: 'MXFP4',
};

const DTYPE_BY_GGML: Readonly<Record<number, DType>> = {
  0: 'f32',
  1: 'f16',
  2: 'q4_0',
  8: 'q8_0',
  12: 'q4_k',
  14: 'q6_k',
  30: 'bf16',
};

export const GGML_TYPE_BY_DTYPE: Readonly<Record<DType, number>> = {
  f32: 0,
  f16: 1,
  q4_0: 2,
  q8_0: 8,
  q4_k: 12,
  q6_k: 14,
  bf16: 30,
};

/** The Tessera dtype of a ggml type id, or undefined when Tessera cannot compute with it. */
export function dtypeOfGgmlType(type: number): DType | undefined {
  return DTYPE_BY_GGML[type];
}

export function ggmlTypeName(type: number): string {
  return GGML_TYPE_NAMES[type] ?? `unknown type ${type}`;
}

export function alignUp(offset: number, alignment: number): number {
  return Math.ceil(offset / alignment) * alignment;
}
