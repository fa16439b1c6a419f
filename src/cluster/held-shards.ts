/**
 * The stored bytes of the slices a rank holds, kept so that a re-shard reads
 * only what the new layout adds. A slice is a rectangle of a tensor seen as
 * [rows, cols]: a band of rows (column-parallel and vocab shards), a band of
 * columns (row-parallel shards, 1-D slices), or the whole tensor. A new
 * slice is composed from the held rectangle's overlap plus store reads of
 * the ranges outside it: a tp 2 rank becoming tp 1 reads the other half of
 * each tensor, not the whole.
 *
 * A slice kept exactly is handed back as the same bytes object, which lets
 * the rank keep the weight it made from it instead of loading it again.
 *
 * Floor: bytes read ≤ the new slices' bytes that were not held
 * (`newBytes`). One case reads more: a projection whose split changes
 * between row-parallel and gathered (rows ↔ columns, DESIGN §3) reads its
 * new band whole, because a store reads whole rows or whole columns.
 */
import { byteSize, type DType } from '../core/dtype.js';
import { TesseraError } from '../core/errors.js';
import { matrixShape, type TensorStore } from '../format/tensor-store.js';
import type { SliceReader } from '../model/shard-weights.js';
import { sliceBytes } from '../format/slice-bytes.js';

interface Range {
  readonly start: number;
  readonly end: number;
}

interface HeldSlice {
  readonly rows: Range;
  readonly cols: Range;
  /** [rows.end - rows.start, stored bytes of cols] */
  readonly bytes: Uint8Array;
}

interface TensorGeometry {
  readonly dtype: DType;
  readonly rows: number;
  readonly cols: number;
}

export class HeldShards implements SliceReader {
  private held = new Map<string, HeldSlice>();
  private next = new Map<string, HeldSlice>();
  private store: TensorStore | undefined;
  /** Bytes of this load's slices that were not held: what an ideal re-shard reads. */
  newBytes = 0;
  /** Bytes of this load's slices copied from held slices instead of read. */
  reusedBytes = 0;

  /** Starts a load from `store`: slices are composed from the held ones plus its bytes. */
  begin(store: TensorStore): void {
    this.store = store;
    this.next = new Map();
    this.newBytes = 0;
    this.reusedBytes = 0;
  }

  /** Ends the load: the slices it composed are what the rank holds now; the rest is dropped. */
  finish(): void {
    this.held = this.next;
    this.next = new Map();
    this.store = undefined;
  }

  /** Forgets everything held (a spare frees its memory). */
  clear(): void {
    this.held = new Map();
  }

  get bytesHeld(): number {
    let bytes = 0;
    for (const slice of this.held.values()) bytes += slice.bytes.byteLength;
    return bytes;
  }

  readRows(name: string, rowStart: number, rowEnd: number): Uint8Array {
    const { store, geometry } = this.tensor(name);
    const rowBytes = byteSize(geometry.dtype, geometry.cols);
    const want = { rows: { start: rowStart, end: rowEnd }, cols: { start: 0, end: geometry.cols } };
    const held = this.heldSlice(name);
    if (held && sameRect(held, want)) return this.keep(name, held);
    const from = held ? Math.max(rowStart, held.rows.start) : 0;
    const to = held ? Math.min(rowEnd, held.rows.end) : 0;
    const fullWidth = held !== undefined && held.cols.start === 0 && held.cols.end === geometry.cols;
    let out: Uint8Array;
    if (held && fullWidth && from < to) {
      out = sliceBytes((rowEnd - rowStart) * rowBytes);
      out.set(held.bytes.subarray((from - held.rows.start) * rowBytes, (to - held.rows.start) * rowBytes), (from - rowStart) * rowBytes);
      for (const gap of outside(want.rows, { start: from, end: to })) {
        const at = (gap.start - rowStart) * rowBytes;
        if (store.readRowsInto) store.readRowsInto(name, gap.start, gap.end, out, at);
        else out.set(store.readRows(name, gap.start, gap.end), at);
      }
      this.count(out.byteLength, (to - from) * rowBytes, true);
    } else {
      // Nothing to take from what is held: the store's bytes are the slice (no second copy, which
      // on a large model costs seconds of page faults).
      out = store.readRows(name, rowStart, rowEnd);
      this.count(out.byteLength, held ? overlapBytes(held, want, geometry) : 0, false);
    }
    this.next.set(name, { ...want, bytes: out });
    return out;
  }

  readColumns(name: string, colStart: number, colEnd: number): Uint8Array {
    const { store, geometry } = this.tensor(name);
    if (!store.readColumns) {
      throw new TesseraError('TESSERA_ERR_UNSUPPORTED_ARCH', `this ${store.format} store cannot read column slices, so ${name} cannot be split; run with --tp 1`);
    }
    const want = { rows: { start: 0, end: geometry.rows }, cols: { start: colStart, end: colEnd } };
    const sliceRowBytes = byteSize(geometry.dtype, colEnd - colStart);
    const held = this.heldSlice(name);
    if (held && sameRect(held, want)) return this.keep(name, held);
    const from = held ? Math.max(colStart, held.cols.start) : 0;
    const to = held ? Math.min(colEnd, held.cols.end) : 0;
    const fullHeight = held !== undefined && held.rows.start === 0 && held.rows.end === geometry.rows;
    let out: Uint8Array;
    if (held && fullHeight && from < to) {
      out = sliceBytes(geometry.rows * sliceRowBytes);
      copyColumns(out, sliceRowBytes, byteSize(geometry.dtype, from - colStart), held.bytes, byteSize(geometry.dtype, held.cols.end - held.cols.start), byteSize(geometry.dtype, from - held.cols.start), byteSize(geometry.dtype, to - from), geometry.rows);
      for (const gap of outside(want.cols, { start: from, end: to })) {
        const width = byteSize(geometry.dtype, gap.end - gap.start);
        const at = byteSize(geometry.dtype, gap.start - colStart);
        if (store.readColumnsInto) store.readColumnsInto(name, gap.start, gap.end, out, sliceRowBytes, at);
        else copyColumns(out, sliceRowBytes, at, store.readColumns(name, gap.start, gap.end), width, 0, width, geometry.rows);
      }
      this.count(out.byteLength, geometry.rows * byteSize(geometry.dtype, to - from), true);
    } else {
      out = store.readColumns(name, colStart, colEnd);
      this.count(out.byteLength, held ? overlapBytes(held, want, geometry) : 0, false);
    }
    this.next.set(name, { ...want, bytes: out });
    return out;
  }

  private tensor(name: string): { store: TensorStore; geometry: TensorGeometry } {
    const store = this.store;
    if (!store) throw new TesseraError('TESSERA_ERR_INTERNAL', 'HeldShards read outside a load; call begin(store) first');
    const info = store.get(name);
    if (!info) throw new TesseraError('TESSERA_ERR_MISSING_TENSOR', `the model has no tensor ${name}; the file is incomplete or not a supported architecture`);
    return { store, geometry: { dtype: info.dtype, ...matrixShape(info.shape) } };
  }

  /** What this load already composed of the tensor (a tied embedding is read twice), else what was held. */
  private heldSlice(name: string): HeldSlice | undefined {
    return this.next.get(name) ?? this.held.get(name);
  }

  /**
   * A slice the new layout keeps exactly: the very same bytes object, so the
   * rank can keep the backend weight made from it (rank-loader.ts).
   */
  private keep(name: string, held: HeldSlice): Uint8Array {
    this.count(held.bytes.byteLength, held.bytes.byteLength, true);
    this.next.set(name, held);
    return held.bytes;
  }

  /** `heldBytes` of a `sliceBytes` slice were held; `copied`: and were taken from there (else read again). */
  private count(sliceBytes: number, heldBytes: number, copied: boolean): void {
    if (copied) this.reusedBytes += heldBytes;
    this.newBytes += sliceBytes - heldBytes;
  }
}

function sameRect(held: HeldSlice, want: { rows: Range; cols: Range }): boolean {
  return held.rows.start === want.rows.start && held.rows.end === want.rows.end && held.cols.start === want.cols.start && held.cols.end === want.cols.end;
}

/** Parts of `want` outside `have` (at most two ranges). */
function outside(want: Range, have: Range | undefined): Range[] {
  if (!have) return [want];
  const gaps: Range[] = [];
  if (want.start < have.start) gaps.push({ start: want.start, end: have.start });
  if (have.end < want.end) gaps.push({ start: have.end, end: want.end });
  return gaps;
}

/** Stored bytes of the intersection of a held slice and a wanted one. */
function overlapBytes(held: HeldSlice, want: { rows: Range; cols: Range }, geometry: TensorGeometry): number {
  const rows = Math.max(0, Math.min(held.rows.end, want.rows.end) - Math.max(held.rows.start, want.rows.start));
  const cols = Math.max(0, Math.min(held.cols.end, want.cols.end) - Math.max(held.cols.start, want.cols.start));
  return rows * byteSize(geometry.dtype, cols);
}

/** Copies `length` bytes of each of `rows` rows from `source` (rows of `sourceRowBytes`, at `sourceOffset`) into `target`. */
function copyColumns(target: Uint8Array, targetRowBytes: number, targetOffset: number, source: Uint8Array, sourceRowBytes: number, sourceOffset: number, length: number, rows: number): void {
  for (let row = 0; row < rows; row++) {
    const at = row * sourceRowBytes + sourceOffset;
    target.set(source.subarray(at, at + length), row * targetRowBytes + targetOffset);
  }
}
