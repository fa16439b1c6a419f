/**
 * The prefill side of a KV transfer when the prefill replica is a mesh
 * (`serve --tp/--pp --role prefill`): the keys and values live on the
 * ranks, each holding its stage's layers and its own KV heads, so after
 * each forward pass that wrote rows of an exported sequence the driver
 * reads them back (one kv-read to every rank, MeshCoordinator.readKv) and
 * hands each rank's run to `sink` as rows of its heads. The decode replica
 * writes them by head (kv-rows.ts): a tp 2 prefill's two halves fill a
 * tp 1 decode replica's pool, and the bits are those the ranks' attention
 * read. The rows leave once per step rather than layer by layer (the
 * ranks compute a step's layers without the driver in between).
 *
 * Rows below a transfer's skipPositions are never sent (the decode replica
 * holds them already); rows this replica took from its own prefix cache
 * are on the ranks too (their blocks mirror the driver's) and go with the
 * first step that touches the sequence.
 */
import { kvDtypeBytes, type KvDtype } from '../core/kv-dtype.js';
import type { Batch } from '../model/batch.js';
import type { KvExport } from '../engine/kv-export.js';
import type { KvRingIo, KvRows, KvRowsHeader, TransferId } from '../engine/kv-messages.js';
import type { Sequence } from '../engine/sequence.js';
import type { KvReadRun } from './control-message.js';
import type { KvRankRows } from './kv-read-pipe.js';
import type { KvLayout } from './rank-runner.js';
import { driverPool } from './mesh-batches.js';

/** Rows of one kv-read at most (longer runs take several), unless a rank's reply would pass READ_BYTES. */
export const READ_TOKENS = 512;
/** A rank's reply to one kv-read at most (the coordinator takes frames up to 256 MiB). */
export const READ_BYTES = 64 * 2 ** 20;

/** Rows per kv-read for a model whose every layer and head, in f32, one rank might hold. */
export function readTokensFor(shape: { numLayers: number; numKvHeads: number; headDim: number }): number {
  const bytesPerToken = 2 * shape.numLayers * shape.numKvHeads * shape.headDim * 4;
  return Math.max(1, Math.min(READ_TOKENS, Math.floor(READ_BYTES / bytesPerToken)));
}

/** What the exporter needs of the mesh. */
export interface KvReader {
  readKv(pool: KvLayout, runs: readonly KvReadRun[], generation?: number): Promise<KvRankRows[]>;
}

interface Exported {
  sequence: Sequence;
  /** Rows [skipPositions, sentUpTo) of every layer and head have gone out. */
  sentUpTo: number;
  /** The link's shared-memory ring the rows go into (else by message). */
  ring: string | undefined;
}

/** One run of one transfer within a read. */
interface Piece {
  transfer: TransferId;
  run: KvReadRun;
}

export class MeshKvExporter implements KvExport {
  private readonly exported = new Map<TransferId, Exported>();

  private readonly headDim: number;
  /** Rows per kv-read (readTokensFor). */
  private readonly readTokens: number;

  constructor(
    private readonly mesh: KvReader,
    shape: { numLayers: number; numKvHeads: number; headDim: number },
    private readonly sink: (rows: KvRows) => void,
    /** The links' shared-memory rings, when this thread may write them. */
    private readonly rings?: KvRingIo,
  ) {
    this.headDim = shape.headDim;
    this.readTokens = readTokensFor(shape);
  }

  get active(): boolean {
    return this.exported.size > 0;
  }

  track(transfer: TransferId, sequence: Sequence, skipPositions: number, ring?: string): void {
    this.exported.set(transfer, { sequence, sentUpTo: skipPositions, ring });
  }

  untrack(transfer: TransferId): void {
    this.exported.delete(transfer);
    this.rings?.endTransfer?.(transfer);
  }

  sentAll(transfer: TransferId, positions: number): boolean {
    const entry = this.exported.get(transfer);
    return entry !== undefined && entry.sentUpTo >= positions;
  }

  /** The layer taps of one process: the mesh reads its rows after the step instead (afterForward). */
  afterLayer(): void {}

  /** `batch` ran on `generation`: read back and send what it wrote for exported sequences. */
  async afterForward(batch: Batch, generation: number): Promise<void> {
    const pieces: Piece[] = [];
    const ends = new Map<Exported, number>();
    for (const [transfer, entry] of this.exported) {
      const segment = batch.segments.find((candidate) => candidate.kv === entry.sequence.kv);
      if (!segment || segment.positions.length === 0) continue;
      const end = segment.positions[segment.positions.length - 1] + 1;
      if (end <= entry.sentUpTo) continue;
      ends.set(entry, end);
      const blockTable = Array.from(segment.kv.blockTable);
      for (let from = entry.sentUpTo; from < end; from += this.readTokens) pieces.push({ transfer, run: { blockTable, from, count: Math.min(this.readTokens, end - from) } });
    }
    if (pieces.length === 0) return;
    const pool = driverPool(batch);
    for (const read of readsOf(pieces, this.readTokens)) this.send(read, await this.mesh.readKv(pool, read.map((piece) => piece.run), generation));
    for (const [entry, end] of ends) entry.sentUpTo = end;
  }

  /** Each rank's part of a read, as rows of its heads, run by run and layer by layer (the body's order). */
  private send(read: readonly Piece[], parts: readonly KvRankRows[]): void {
    for (const part of parts) {
      const [headStart, headEnd] = part.heads;
      const headCount = headEnd - headStart;
      if (headCount === 0) continue;
      const runBytes = (count: number): number => count * headCount * this.headDim * kvDtypeBytes(part.dtype);
      let at = 0;
      for (const { transfer, run } of read) {
        const ring = this.exported.get(transfer)?.ring;
        for (let layer = part.layers[0]; layer < part.layers[1]; layer++) {
          const keys = part.body.subarray(at, at + runBytes(run.count));
          const values = part.body.subarray(at + keys.byteLength, at + 2 * keys.byteLength);
          at += 2 * keys.byteLength;
          const header: KvRowsHeader = { transfer, layer, from: run.from, count: run.count, headStart, headCount, dtype: part.dtype };
          if (ring !== undefined && this.rings?.writeRows(header, [keys, values], ring)) continue;
          this.sink({ transfer, layer, from: run.from, count: run.count, headStart, headCount, keys: rowData(keys, part.dtype), values: rowData(values, part.dtype) });
        }
      }
    }
  }
}

/** A copy of `bytes` as KV row data of `dtype` (its own buffer: a message moves it to another thread). */
function rowData(bytes: Uint8Array, dtype: KvDtype): Float32Array | Uint16Array {
  const copy = new Uint8Array(bytes); // a copy, also of a Buffer (whose slice() is a view)
  return dtype === 'f16' ? new Uint16Array(copy.buffer) : new Float32Array(copy.buffer);
}

/** The pieces in reads of at most `tokens` rows each (a piece is never longer), in order. */
function readsOf(pieces: readonly Piece[], tokens: number): Piece[][] {
  const reads: Piece[][] = [];
  let taken = Infinity;
  for (const piece of pieces) {
    if (taken + piece.run.count > tokens) {
      reads.push([]);
      taken = 0;
    }
    reads[reads.length - 1].push(piece);
    taken += piece.run.count;
  }
  return reads;
}
