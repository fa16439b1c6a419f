/**
 * A batch as the batched KV ops take it (Backend.writeKvBatch,
 * Backend.attentionBatch): the position of every row, and the segments
 * grouped by the KV cache they live in, so each layer makes one call per
 * cache (one in practice: a replica's sequences share its cache).
 */
import type { KvPool, KvSegment } from '../backend/backend.js';
import { check } from '../core/errors.js';
import type { Batch } from './batch.js';

/** Segments whose sequences keep their keys and values in the same pools. */
export interface CacheSegments {
  /** Per layer. */
  keys: readonly KvPool[];
  /** Per layer. */
  values: readonly KvPool[];
  segments: KvSegment[];
}

export interface BatchKv {
  /** [numTokens] position of each row in its sequence (0 for a row in no segment). */
  positions: Int32Array;
  caches: CacheSegments[];
}

export function batchKv(batch: Batch): BatchKv {
  const positions = new Int32Array(batch.ids.length);
  const caches: CacheSegments[] = [];
  for (const { kv, start, positions: segmentPositions } of batch.segments) {
    check(
      Number.isInteger(start) && start >= 0 && start + segmentPositions.length <= positions.length,
      'TESSERA_ERR_INVALID_ARGUMENT',
      `a batch segment covers rows [${start}, ${start + segmentPositions.length}) but the batch has ${positions.length} tokens`,
    );
    positions.set(segmentPositions, start);
    let cache = caches.find((c) => c.keys === kv.keys && c.values === kv.values);
    if (!cache) {
      cache = { keys: kv.keys, values: kv.values, segments: [] };
      caches.push(cache);
    }
    cache.segments.push({ start, positions: segmentPositions, blockTable: kv.blockTable });
  }
  return { positions, caches };
}

/** Rows of `from` [numTokens, rowSize] that the segments cover, copied into `to`. */
export function copySegmentRows(from: Float32Array, to: Float32Array, segments: readonly KvSegment[], rowSize: number): void {
  for (const { start, positions } of segments) {
    to.set(from.subarray(start * rowSize, (start + positions.length) * rowSize), start * rowSize);
  }
}
