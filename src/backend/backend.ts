/**
 * The compute interface every model is written against. Activations are plain
 * Float32Arrays owned by the caller; weights are loaded once and owned by the
 * backend in whatever form it computes fastest from.
 *
 * Determinism contract (DESIGN §4), which every implementation keeps:
 * - `matmul` reduces over K in the canonical order: the row is cut into
 *   leaves of `reductionLeafSize(dtype)` elements; each leaf is summed in one
 *   fixed order and rounded to float32; leaf sums over a range of leaves
 *   [lo, hi) combine as sum([lo, mid)) + sum([mid, hi)) with
 *   mid = lo + floor((hi - lo) / 2), every partial rounded to float32. So a
 *   row-parallel shard owning 1/2^k of the leaves computes an exact subtree.
 * - No result depends on how many tokens are in the call or on thread count.
 * - `attention` walks KV positions in order, block by block, with online
 *   softmax, the same for prefill, chunked prefill and decode.
 * - The batched ops (`writeKvBatch`, `attentionBatch`) give each segment
 *   exactly the bits of the per-sequence op on that segment alone.
 */
import type { DType } from '../core/dtype.js';
import type { KvDtype } from '../core/kv-dtype.js';
import type { RopeStyle } from '../core/model-config.js';

export interface Weight {
  readonly dtype: DType;
  /** Row-major, outermost first; a matrix is [outFeatures, inFeatures]. */
  readonly shape: readonly number[];
}

export interface AttentionArgs {
  /** [numTokens, numHeads, headDim] */
  query: Float32Array;
  keyCache: KvPool;
  valueCache: KvPool;
  /** Physical block of each logical block of the sequence. */
  blockTable: Int32Array;
  /** [numTokens] position of each query; query t attends to positions 0..positions[t]. */
  positions: Int32Array;
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  scale: number;
}

interface KvPoolShape {
  readonly blockSize: number;
  readonly numKvHeads: number;
  readonly headDim: number;
}

/**
 * One layer's keys or values in fixed-size blocks:
 * data is [numBlocks, blockSize, numKvHeads, headDim], float32 values or
 * IEEE half bits. Writes round float32 to f16 (nearest even); attention
 * widens f16 exactly and then computes as from an f32 pool holding the
 * widened values, bit for bit.
 */
export type KvPool =
  | (KvPoolShape & { readonly dtype: 'f32'; readonly data: Float32Array })
  | (KvPoolShape & { readonly dtype: 'f16'; readonly data: Uint16Array });

/** One sequence's run of consecutive rows in a batched KV op. */
export interface KvSegment {
  /** First row of the segment in the batch. */
  start: number;
  /** [count] position of each row in its sequence. */
  positions: Int32Array;
  /** Physical block of each logical block of the sequence. */
  blockTable: Int32Array;
}

/**
 * The keys and values of a batch's rows, written to one layer's pools: each
 * segment's rows at its own positions through its own block table. Segments
 * do not overlap and lie inside the batch's rows.
 */
export interface KvWriteBatchArgs {
  keyCache: KvPool;
  valueCache: KvPool;
  /** [numTokens, numKvHeads, headDim] */
  keys: Float32Array;
  /** [numTokens, numKvHeads, headDim] */
  values: Float32Array;
  segments: readonly KvSegment[];
}

/**
 * Causal attention of a batch's queries, each segment over its own
 * sequence's blocks of one layer's pools (segments as in KvWriteBatchArgs).
 */
export interface AttentionBatchArgs {
  /** [numTokens, numHeads, headDim] */
  query: Float32Array;
  keyCache: KvPool;
  valueCache: KvPool;
  segments: readonly KvSegment[];
  numHeads: number;
  numKvHeads: number;
  headDim: number;
  scale: number;
  /** [numTokens, numHeads, headDim] receives the result when given (not query); rows in no segment are zeroed. */
  out?: Float32Array;
}

export interface RopeArgs {
  /** [numTokens, numHeads, headDim], rotated in place. */
  x: Float32Array;
  /** [numTokens] */
  positions: Int32Array;
  numHeads: number;
  headDim: number;
  /** Leading dimensions of each head that rotate. */
  ropeDims: number;
  style: RopeStyle;
  /** [ropeDims / 2] inverse frequency of each rotated pair. */
  inverseFrequencies: Float32Array;
}

export interface Backend {
  readonly name: string;

  /** Takes the stored bytes of a tensor (any DType) and keeps it for compute. */
  loadWeight(dtype: DType, shape: readonly number[], bytes: Uint8Array): Weight;

  /**
   * Optional: the same from the tensor's stored bytes at `byteOffset` of the
   * file at `path`, memory-mapped where the backend can (no copy; processes
   * on one host share the page cache). Callers use it when the store knows
   * the tensor's file location, and loadWeight otherwise.
   */
  loadWeightFromFile?(path: string, byteOffset: number, dtype: DType, shape: readonly number[]): Weight;

  /** Dequantized float32 copy of rows [rowStart, rowEnd) of a weight; [rows, cols]. */
  readRows(weight: Weight, rowStart: number, rowEnd: number): Float32Array;

  /** x [numTokens, K] · Wᵀ with W [M, K] → [numTokens, M], canonical reduction order. */
  matmul(x: Float32Array, weight: Weight, numTokens: number, out?: Float32Array): Float32Array;

  /**
   * x against several weights of the same width → one [numTokens, M_i] per
   * weight, each bitwise what matmul gives it alone. One call lets a backend
   * run them as one job (q, k, v; gate and up) and quantize x once. `outs`,
   * when given, receive the results (and are returned): callers that reuse
   * buffers spare the allocations.
   */
  matmulMany(x: Float32Array, weights: readonly Weight[], numTokens: number, outs?: readonly Float32Array[]): Float32Array[];

  /** Rows `ids` of an embedding table [vocab, dim] → [numTokens, dim]. */
  embed(ids: Int32Array, table: Weight): Float32Array;

  /** RMSNorm of each row of x [numRows, dim] times weight [dim] (a float32 weight). */
  /** `out` ([numRows, dim], not x), when given, receives the result. */
  rmsNorm(x: Float32Array, weight: Weight, numRows: number, eps: number, out?: Float32Array): Float32Array;

  /** x [numRows, dim] += bias [dim], in place. */
  addBias(x: Float32Array, bias: Weight, numRows: number): void;

  /** Rotates query or key heads in place. */
  rope(args: RopeArgs): void;

  /** Writes keys or values [numTokens, numKvHeads, headDim] at `positions` of a sequence. */
  writeKv(pool: KvPool, blockTable: Int32Array, positions: Int32Array, values: Float32Array): void;

  /** Causal attention of the queries over the sequence's cache → [numTokens, numHeads, headDim]. */
  attention(args: AttentionArgs): Float32Array;

  /**
   * writeKv of the keys and of the values of every segment, in one call.
   * Segments write in order, so a slot two segments share ends with the last
   * one's row (the same bits anyway: same tokens at the same position).
   */
  writeKvBatch(args: KvWriteBatchArgs): void;

  /**
   * `attention` of every segment in one call → [numTokens, numHeads, headDim];
   * rows outside every segment are zero. Each segment's rows are bitwise
   * what `attention` gives for that segment alone.
   */
  attentionBatch(args: AttentionBatchArgs): Float32Array;

  /** silu(gate) * up, elementwise → a new array, or `out` (which may be gate itself). */
  siluMul(gate: Float32Array, up: Float32Array, out?: Float32Array): Float32Array;

  /** a += b, elementwise, in place. */
  addInPlace(a: Float32Array, b: Float32Array): void;

  /**
   * Optional, for backends that compute on a device (WebGPU): opens a step.
   * Until endStep, ops may be recorded rather than run, and run together
   * (one command buffer); an array an op returns or writes in place holds
   * its values only once flush or endStep names it, so the caller must not
   * read or write such an array on the host before. Host arrays an op takes
   * are read as they are when the op is called. Outside a step every op
   * completes at once. CPU backends leave these out, and callers call them
   * as `backend.beginStep?.()`: nothing changes for them.
   */
  beginStep?(): void;

  /**
   * Optional: rows `rows` of x [numRows, rowSize] → [rows.length, rowSize]. A
   * device backend picks a step's logit rows without reading x back; the CPU
   * backends copy (gather-rows.ts), as callers do where it is missing.
   */
  gatherRows?(x: Float32Array, rows: Int32Array, rowSize: number): Float32Array;

  /** Runs what the step recorded so far and fills `arrays` (host data again from here); the step stays open. */
  flush?(arrays: readonly Float32Array[]): void;

  /** Runs the rest of the step, fills `arrays`, and closes the step. */
  endStep?(arrays: readonly Float32Array[]): void;
}

/**
 * A pool of `numBlocks` blocks of `dtype`, zeroed; with `allocate`, on the
 * bytes it returns (their contents as it leaves them).
 */
export function createKvPool(
  dtype: KvDtype,
  numBlocks: number,
  blockSize: number,
  numKvHeads: number,
  headDim: number,
  allocate: (bytes: number) => Uint8Array = (bytes) => new Uint8Array(bytes),
): KvPool {
  const elements = numBlocks * blockSize * numKvHeads * headDim;
  const shape = { blockSize, numKvHeads, headDim };
  const bytes = allocate(elements * (dtype === 'f16' ? 2 : 4));
  if (dtype === 'f16') return { ...shape, dtype, data: new Uint16Array(bytes.buffer, bytes.byteOffset, elements) };
  return { ...shape, dtype, data: new Float32Array(bytes.buffer, bytes.byteOffset, elements) };
}

/** Leaf size of the canonical reduction for a weight type: one quant block, or 32 elements. */
export function reductionLeafSize(dtype: DType): number {
  if (dtype === 'q4_k' || dtype === 'q6_k') return 256;
  return 32;
}
