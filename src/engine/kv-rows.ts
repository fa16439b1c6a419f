/**
 * Runs of KV rows copied out of and into a paged pool by position: what a
 * KV transfer between replicas moves (disaggregated prefill and decode).
 *
 * A pool is [numBlocks, blockSize, numKvHeads, headDim]; position p of a
 * sequence lives in block blockTable[p / blockSize], slot p % blockSize.
 * A run is [count, headCount, headDim]: positions [from, from + count) and
 * KV heads [headStart, headStart + headCount) of the whole model. A pool
 * that holds only some heads (a tensor-parallel rank holds
 * numKvHeads / tp of them) names its first head, so rows written by one
 * layout land in another by head: a run from a tp 2 rank fills half of a
 * tp 1 pool's heads, a tp 1 run fills a tp 2 rank's pool with its half.
 * The bits are copied as they are (f32 or f16 halves), never converted.
 */
import type { KvPool } from '../backend/backend.js';
import { TesseraError } from '../core/errors.js';

/** [count, headCount, headDim] of the pool's element type: f32 values, or f16 bits. */
export type KvRowData = Float32Array | Uint16Array;

/** KV heads [start, start + count) of the whole model. */
export interface HeadRange {
  start: number;
  count: number;
}

/** Every head a pool holds, counted from `start` (0 on one process; the rank's first head on a tp rank). */
export function poolHeads(pool: KvPool, start = 0): HeadRange {
  return { start, count: pool.numKvHeads };
}

/** Rows [from, from + count) of a sequence, all the pool's heads: [count, numKvHeads, headDim]. */
export function readKvRows(pool: KvPool, blockTable: Int32Array, from: number, count: number): KvRowData {
  const rowSize = pool.numKvHeads * pool.headDim;
  const out = pool.dtype === 'f16' ? new Uint16Array(count * rowSize) : new Float32Array(count * rowSize);
  // Whole runs of slots inside one block are contiguous in the pool: one copy per block touched.
  forEachRun(pool.blockSize, blockTable, from, count, (offset, slot, run) => {
    const base = slot * rowSize;
    out.set(pool.data.subarray(base, base + run * rowSize), offset * rowSize);
  });
  return out;
}

/**
 * Rows [from, from + count) of a sequence, all the pool's heads, as byte
 * views on the pool itself, one per block touched, in position order: what
 * a copy into or out of a shared-memory ring takes, without a copy here.
 */
export function kvRowViews(pool: KvPool, blockTable: Int32Array, from: number, count: number): Uint8Array[] {
  const data = pool.data;
  const rowBytes = pool.numKvHeads * pool.headDim * data.BYTES_PER_ELEMENT;
  const views: Uint8Array[] = [];
  forEachRun(pool.blockSize, blockTable, from, count, (_offset, slot, run) => {
    views.push(new Uint8Array(data.buffer, data.byteOffset + slot * rowBytes, run * rowBytes));
  });
  return views;
}

/**
 * Writes a run [count, rows.heads.count, headDim] at positions [from, from + count)
 * into a pool holding `into` heads; heads outside the pool are skipped, heads of the
 * pool outside the run are left alone.
 */
export function writeKvRows(pool: KvPool, blockTable: Int32Array, from: number, data: KvRowData, heads: HeadRange, into: HeadRange = poolHeads(pool)): void {
  checkRun(pool, data, heads);
  const headDim = pool.headDim;
  const count = data.length / (heads.count * headDim);
  const first = Math.max(heads.start, into.start);
  const last = Math.min(heads.start + heads.count, into.start + into.count);
  if (last <= first) return;
  const width = (last - first) * headDim;
  const poolRow = pool.numKvHeads * headDim;
  const runRow = heads.count * headDim;
  const target = pool.data as Float32Array | Uint16Array;
  const whole = first === heads.start && last === heads.start + heads.count && first === into.start && last === into.start + into.count;
  forEachRun(pool.blockSize, blockTable, from, count, (offset, slot, run) => {
    if (whole) return void target.set(data.subarray(offset * runRow, (offset + run) * runRow), slot * poolRow);
    for (let i = 0; i < run; i++) {
      const source = (offset + i) * runRow + (first - heads.start) * headDim;
      target.set(data.subarray(source, source + width), (slot + i) * poolRow + (first - into.start) * headDim);
    }
  });
}

function checkRun(pool: KvPool, data: KvRowData, heads: HeadRange): void {
  const kind = data instanceof Uint16Array ? 'f16' : 'f32';
  if (kind !== pool.dtype) throw new TesseraError('TESSERA_ERR_KV_TRANSFER_FAILED', `KV rows of ${kind} cannot go into a ${pool.dtype} cache; give both replicas the same --kv-cache-dtype`);
  if (heads.count < 1 || data.length % (heads.count * pool.headDim) !== 0) {
    throw new TesseraError('TESSERA_ERR_KV_TRANSFER_FAILED', `a run of ${data.length} KV elements is not whole rows of ${heads.count} heads × ${pool.headDim}`);
  }
}

/**
 * Calls `visit(offset, slot, run)` for each stretch of positions inside one
 * block: `offset` is the first position's index in the run, `slot` its
 * global slot (block × blockSize + position in block), `run` how many follow.
 */
function forEachRun(blockSize: number, blockTable: Int32Array, from: number, count: number, visit: (offset: number, slot: number, run: number) => void): void {
  let offset = 0;
  while (offset < count) {
    const position = from + offset;
    const logical = Math.floor(position / blockSize);
    if (logical >= blockTable.length) throw new TesseraError('TESSERA_ERR_INTERNAL', `position ${position} is past the sequence's ${blockTable.length} KV blocks`);
    const within = position % blockSize;
    const run = Math.min(blockSize - within, count - offset);
    visit(offset, blockTable[logical] * blockSize + within, run);
    offset += run;
  }
}
