/**
 * The checks every backend makes on the segments of a batched KV op
 * (writeKvBatch, attentionBatch), with one set of messages: each segment's
 * rows lie inside the batch and no two segments share a row, so segments can
 * run in any order, or at once, without touching each other's rows; and the
 * check that a position maps through its block table into the pool.
 */
import type { KvPool, KvSegment } from './backend.js';
import { check } from '../core/errors.js';

/** Rows of a batch of `length` values, `rowSize` values a row; throws when it is not whole rows. */
export function batchRows(length: number, rowSize: number, what: string): number {
  check(
    rowSize > 0 && length % rowSize === 0,
    'TESSERA_ERR_INVALID_ARGUMENT',
    `${what} has ${length} values, not a whole number of rows of ${rowSize}`,
  );
  return length / rowSize;
}

/** Each segment's rows [start, start + count) lie inside [0, numTokens), and no row is in two segments. */
export function checkKvSegments(numTokens: number, segments: readonly KvSegment[]): void {
  const taken = new Uint8Array(numTokens);
  for (const { start, positions } of segments) {
    const end = start + positions.length;
    check(
      Number.isInteger(start) && start >= 0 && end <= numTokens,
      'TESSERA_ERR_INVALID_ARGUMENT',
      `a segment covers rows [${start}, ${end}) but the batch has ${numTokens} rows`,
    );
    for (let row = start; row < end; row++) {
      check(taken[row] === 0, 'TESSERA_ERR_INVALID_ARGUMENT', `row ${row} of the batch is in two segments; segments must not overlap`);
      taken[row] = 1;
    }
  }
}

/** Zeroes the rows of x [numTokens, rowSize] that no segment covers (segments already checked). */
export function zeroRowsOutsideSegments(x: Float32Array, segments: readonly KvSegment[], rowSize: number): void {
  const starts = segments.map((segment) => [segment.start, segment.start + segment.positions.length]).sort((a, b) => a[0] - b[0]);
  let row = 0;
  for (const [start, end] of starts) {
    if (start > row) x.fill(0, row * rowSize, start * rowSize);
    row = Math.max(row, end);
  }
  x.fill(0, row * rowSize);
}

/** Rows [segment.start, segment.start + count) of x [numTokens, rowSize]. */
export function segmentRows(x: Float32Array, segment: KvSegment, rowSize: number): Float32Array {
  return x.subarray(segment.start * rowSize, (segment.start + segment.positions.length) * rowSize);
}

/** The key and value pools of a layer have one shape. */
export function checkSamePools(keyCache: KvPool, valueCache: KvPool): void {
  check(
    valueCache.numKvHeads === keyCache.numKvHeads && valueCache.headDim === keyCache.headDim &&
      valueCache.blockSize === keyCache.blockSize && valueCache.data.length === keyCache.data.length &&
      valueCache.dtype === keyCache.dtype,
    'TESSERA_ERR_INVALID_ARGUMENT',
    'the key and value pools differ (numKvHeads, headDim, blockSize, size or dtype)',
  );
}

/**
 * Index in pool.data of (position, kv head 0, dim 0) of a sequence, after
 * checking that the position maps through the block table into the pool.
 */
export function kvSlotOffset(pool: KvPool, blockTable: Int32Array, position: number): number {
  const logical = Math.floor(position / pool.blockSize);
  check(
    Number.isInteger(position) && position >= 0 && logical < blockTable.length,
    'TESSERA_ERR_INVALID_ARGUMENT',
    `KV position ${position} is beyond the ${blockTable.length} blocks of the sequence's block table; allocate blocks before writing or reading them`,
  );
  const physical = blockTable[logical];
  const rowSize = pool.numKvHeads * pool.headDim;
  check(
    physical >= 0 && (physical + 1) * pool.blockSize * rowSize <= pool.data.length,
    'TESSERA_ERR_INVALID_ARGUMENT',
    `block table maps logical block ${logical} to physical block ${physical}, outside the pool`,
  );
  return (physical * pool.blockSize + (position % pool.blockSize)) * rowSize;
}
