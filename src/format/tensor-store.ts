/**
 * A model file's tensors, read lazily by byte range. Every store names tensors
 * with the canonical GGUF-style names (`token_embd.weight`,
 * `blk.3.attn_q.weight`, `output_norm.weight` …) whatever the file calls them,
 * so the model layer is written once.
 */
import type { DType } from '../core/dtype.js';
import { TesseraError } from '../core/errors.js';

export interface TensorInfo {
  /** Canonical name, e.g. `blk.0.ffn_down.weight`. */
  readonly name: string;
  readonly dtype: DType;
  /** Row-major, outermost first: a matrix is [rows, cols] = [outFeatures, inFeatures]. */
  readonly shape: readonly number[];
}

export type ModelFormat = 'gguf' | 'safetensors' | 'llama2c';

export interface TensorStore {
  readonly format: ModelFormat;
  list(): TensorInfo[];
  get(name: string): TensorInfo | undefined;
  /**
   * Stored bytes of rows [rowStart, rowEnd) of a tensor seen as
   * [product of all dims but the last, last dim]; a 1-D tensor is one row.
   * Reads only that byte range from disk.
   */
  readRows(name: string, rowStart: number, rowEnd: number): Uint8Array;
  /**
   * Stored bytes of columns [colStart, colEnd) of every row, rows end to end
   * ([rows, colEnd - colStart]); reads one byte range per row and nothing
   * else. The bounds must fall on quant block boundaries (a row-parallel
   * shard's slice of the input features).
   */
  readColumns?(name: string, colStart: number, colEnd: number): Uint8Array;
  /**
   * readRows into `target` at `targetOffset` instead of a new array: a rank
   * composing a slice from bytes it holds plus a read (re-sharding) fills
   * the slice in place, with no temporary of the read's size.
   */
  readRowsInto?(name: string, rowStart: number, rowEnd: number, target: Uint8Array, targetOffset: number): void;
  /** readColumns into `target`: row r's bytes go to targetOffset + r * targetRowBytes. */
  readColumnsInto?(name: string, colStart: number, colEnd: number, target: Uint8Array, targetRowBytes: number, targetOffset: number): void;
  /**
   * Where rows [rowStart, rowEnd) of a tensor lie in one file, for backends
   * that map weights straight from it; undefined when they do not lie
   * contiguously in one file.
   */
  fileRange?(name: string, rowStart: number, rowEnd: number): { path: string; byteOffset: number } | undefined;
  /** Bytes read from disk through this store so far. */
  readonly bytesRead: number;
  close(): void;
}

/** Number of rows and the length of a row of a tensor seen as a matrix. */
export function matrixShape(shape: readonly number[]): { rows: number; cols: number } {
  const cols = shape.length === 0 ? 1 : shape[shape.length - 1];
  const rows = shape.slice(0, -1).reduce((a, b) => a * b, 1);
  return { rows, cols };
}

/** All stored bytes of a tensor. */
export function readTensor(store: TensorStore, name: string): Uint8Array {
  const info = store.get(name);
  if (!info) {
    throw new TesseraError('TESSERA_ERR_MISSING_TENSOR', `the model file has no tensor ${name}; is it complete and of a supported architecture?`);
  }
  return store.readRows(name, 0, matrixShape(info.shape).rows);
}
