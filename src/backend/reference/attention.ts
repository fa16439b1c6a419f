/**
 * Paged KV writes and causal attention. Each (query token, head) pair walks
 * its cache positions 0..position in order, one block at a time, with online
 * softmax. The arithmetic for a pair never looks at the other tokens of the
 * call, so prefill, chunked prefill and decode give the same bits.
 */
import type { AttentionArgs, AttentionBatchArgs, KvPool, KvWriteBatchArgs } from '../backend.js';
import { check } from '../../core/errors.js';
import { f16ToF32, f32ToF16 } from '../../core/half.js';
import { batchRows, checkKvSegments, checkSamePools, kvSlotOffset, segmentRows, zeroRowsOutsideSegments } from '../kv-segments.js';
import { checkOutLength } from '../out-buffer.js';

/** Writes values [numTokens, numKvHeads, headDim] at `positions`. */
export function writeKv(pool: KvPool, blockTable: Int32Array, positions: Int32Array, values: Float32Array): void {
  const rowSize = pool.numKvHeads * pool.headDim;
  check(
    values.length === positions.length * rowSize,
    'TESSERA_ERR_INVALID_ARGUMENT',
    `writeKv got ${values.length} values for ${positions.length} positions of ${rowSize}`,
  );
  for (let t = 0; t < positions.length; t++) {
    const offset = kvSlotOffset(pool, blockTable, positions[t]);
    const row = values.subarray(t * rowSize, (t + 1) * rowSize);
    if (pool.dtype === 'f32') {
      pool.data.set(row, offset);
    } else {
      for (let i = 0; i < rowSize; i++) pool.data[offset + i] = f32ToF16(row[i]);
    }
  }
}

function checkAttentionArgs(args: AttentionArgs): void {
  const { query, keyCache, valueCache, positions, numHeads, numKvHeads, headDim } = args;
  check(
    numKvHeads > 0 && numHeads % numKvHeads === 0,
    'TESSERA_ERR_INVALID_ARGUMENT',
    `numHeads ${numHeads} must be a multiple of numKvHeads ${numKvHeads}`,
  );
  check(
    query.length === positions.length * numHeads * headDim,
    'TESSERA_ERR_INVALID_ARGUMENT',
    `attention query has ${query.length} values, expected ${positions.length} tokens × ${numHeads} heads × ${headDim}`,
  );
  for (const pool of [keyCache, valueCache]) {
    check(
      pool.numKvHeads === numKvHeads && pool.headDim === headDim && pool.blockSize === keyCache.blockSize && pool.dtype === keyCache.dtype,
      'TESSERA_ERR_INVALID_ARGUMENT',
      'the KV pools do not match the attention heads (numKvHeads, headDim, blockSize or dtype differ)',
    );
  }
}

/** Causal attention → [numTokens, numHeads, headDim]. */
export function attention(args: AttentionArgs): Float32Array {
  checkAttentionArgs(args);
  const { query, keyCache, valueCache, blockTable, positions, numHeads, numKvHeads, headDim, scale } = args;
  const group = numHeads / numKvHeads;
  /** [numTokens, numHeads, headDim] */
  const out = new Float32Array(query.length);
  const scratch = new AttentionScratch(headDim, keyCache.blockSize, keyCache.dtype === 'f16');
  for (let t = 0; t < positions.length; t++) {
    for (let h = 0; h < numHeads; h++) {
      const queryOffset = (t * numHeads + h) * headDim;
      const kvHead = Math.floor(h / group);
      attendOne(scratch, query, queryOffset, keyCache, valueCache, blockTable, positions[t], kvHead, scale);
      for (let d = 0; d < headDim; d++) out[queryOffset + d] = scratch.acc[d] / scratch.sum;
    }
  }
  return out;
}

/** writeKv of each segment's keys and values, segment by segment. */
export function writeKvBatch(args: KvWriteBatchArgs): void {
  const { keyCache, valueCache, keys, values, segments } = args;
  const rowSize = keyCache.numKvHeads * keyCache.headDim;
  check(keys.length === values.length, 'TESSERA_ERR_INVALID_ARGUMENT', `writeKvBatch got ${keys.length} keys but ${values.length} values`);
  checkKvSegments(batchRows(keys.length, rowSize, 'writeKvBatch keys'), segments);
  checkSamePools(keyCache, valueCache);
  for (const segment of segments) {
    writeKv(keyCache, segment.blockTable, segment.positions, segmentRows(keys, segment, rowSize));
    writeKv(valueCache, segment.blockTable, segment.positions, segmentRows(values, segment, rowSize));
  }
}

/** attention of each segment over its own blocks → [numTokens, numHeads, headDim]. */
export function attentionBatch(args: AttentionBatchArgs): Float32Array {
  const { query, segments, numHeads, headDim } = args;
  const rowSize = numHeads * headDim;
  checkKvSegments(batchRows(query.length, rowSize, 'attentionBatch query'), segments);
  /** [numTokens, numHeads, headDim] */
  const out = args.out ?? new Float32Array(query.length);
  if (args.out) {
    checkOutLength(args.out, query.length);
    zeroRowsOutsideSegments(args.out, segments, rowSize);
  }
  for (const segment of segments) {
    const { positions, blockTable } = segment;
    out.set(attention({ ...args, query: segmentRows(query, segment, rowSize), blockTable, positions }), segment.start * rowSize);
  }
  return out;
}

class AttentionScratch {
  /** [headDim] weighted sum of values, scaled by exp(-max). */
  readonly acc: Float64Array;
  /** [blockSize] scores of the current block. */
  readonly scores: Float64Array;
  /** [blockSize, headDim] one KV head's keys and values of a block, widened from f16 (empty for f32 pools). */
  readonly keys: Float32Array;
  readonly values: Float32Array;
  sum = 0;

  constructor(headDim: number, blockSize: number, widens: boolean) {
    this.acc = new Float64Array(headDim);
    this.scores = new Float64Array(blockSize);
    this.keys = new Float32Array(widens ? blockSize * headDim : 0);
    this.values = new Float32Array(widens ? blockSize * headDim : 0);
  }
}

/** Where a block's rows of one KV head are as float32: row j at data[base + j·stride]. */
interface BlockRows {
  data: Float32Array;
  base: number;
  stride: number;
}

/**
 * `count` rows of one KV head at `base` (stride `stride`) of a pool as
 * float32: the pool itself for f32; for f16, widened exactly into `into`,
 * so the arithmetic after is the f32 path's on the widened values.
 */
function blockRows(pool: KvPool, base: number, stride: number, count: number, into: Float32Array): BlockRows {
  if (pool.dtype === 'f32') return { data: pool.data, base, stride };
  const { headDim, data } = pool;
  for (let j = 0; j < count; j++) {
    for (let d = 0; d < headDim; d++) into[j * headDim + d] = f16ToF32(data[base + j * stride + d]);
  }
  return { data: into, base: 0, stride: headDim };
}

/** Online softmax of one query head over positions 0..lastPosition; leaves acc and sum in scratch. */
function attendOne(
  scratch: AttentionScratch,
  query: Float32Array,
  queryOffset: number,
  keyCache: KvPool,
  valueCache: KvPool,
  blockTable: Int32Array,
  lastPosition: number,
  kvHead: number,
  scale: number,
): void {
  const { acc, scores } = scratch;
  const { blockSize, headDim } = keyCache;
  acc.fill(0);
  let max = -Infinity;
  let sum = 0;
  for (let blockStart = 0; blockStart <= lastPosition; blockStart += blockSize) {
    const count = Math.min(blockSize, lastPosition + 1 - blockStart);
    // Offsets of position blockStart; positions within a block are contiguous slots.
    const keyBase = kvSlotOffset(keyCache, blockTable, blockStart) + kvHead * headDim;
    const valueBase = kvSlotOffset(valueCache, blockTable, blockStart) + kvHead * headDim;
    const stride = keyCache.numKvHeads * headDim;
    const keys = blockRows(keyCache, keyBase, stride, count, scratch.keys);
    const values = blockRows(valueCache, valueBase, stride, count, scratch.values);
    let blockMax = -Infinity;
    for (let j = 0; j < count; j++) {
      const keyOffset = keys.base + j * keys.stride;
      let dot = 0;
      for (let d = 0; d < headDim; d++) dot += query[queryOffset + d] * keys.data[keyOffset + d];
      const score = dot * scale;
      scores[j] = score;
      if (score > blockMax) blockMax = score;
    }
    const newMax = Math.max(max, blockMax);
    const rescale = max === -Infinity ? 0 : Math.exp(max - newMax);
    sum *= rescale;
    for (let d = 0; d < headDim; d++) acc[d] *= rescale;
    for (let j = 0; j < count; j++) {
      const p = Math.exp(scores[j] - newMax);
      sum += p;
      const valueOffset = values.base + j * values.stride;
      for (let d = 0; d < headDim; d++) acc[d] += p * values.data[valueOffset + d];
    }
    max = newMax;
  }
  scratch.sum = sum;
}
