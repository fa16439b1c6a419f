/**
 * The prefill side of a KV transfer: after each layer of each forward pass,
 * the rows that layer has just written for an exported sequence are copied
 * out and handed to `sink`, which sends them on while the next layer
 * computes (layer-by-layer streaming: the transfer overlaps the prefill).
 *
 * Rows below `skipPositions` are never sent (the decode replica already
 * holds those blocks, by prefix hash). Rows this replica took from its own
 * prefix cache go out with the first layer pass that touches the sequence;
 * rows a preempted sequence computes again are not sent twice (they are the
 * same bits). The rows are read back from the pool after the layer wrote
 * them, so what travels is exactly what attention here would read. When
 * the link has a shared-memory ring, this thread copies them from the pool
 * straight into it (`KvRingIo`); else they are copied out into a message.
 */
import type { Batch } from '../model/batch.js';
import type { KvRingIo, KvRows, KvRowsHeader, TransferId } from './kv-messages.js';
import { kvRowViews, readKvRows } from './kv-rows.js';
import type { Sequence } from './sequence.js';

interface Exported {
  sequence: Sequence;
  skipPositions: number;
  /** Per layer: rows [skipPositions, sentUpTo[layer]) have gone out. */
  sentUpTo: Int32Array;
  /** The link's shared-memory ring the rows go into (else by message). */
  ring: string | undefined;
}

/** An exporter as KvTransfers drives it: this one taps layers in this thread; a mesh driver's reads its ranks (src/cluster/mesh-kv-export.ts). */
export interface KvExport {
  readonly active: boolean;
  track(transfer: TransferId, sequence: Sequence, skipPositions: number, ring?: string): void;
  untrack(transfer: TransferId): void;
  /** Whether every layer (and head) has sent rows up to `positions`. */
  sentAll(transfer: TransferId, positions: number): boolean;
  afterLayer(layer: number, batch: Batch): void;
}

export class KvExporter implements KvExport {
  private readonly exported = new Map<TransferId, Exported>();

  constructor(
    private readonly numLayers: number,
    private readonly sink: (rows: KvRows) => void,
    /** The first KV head of this engine's pools (0 on one process). */
    private readonly headStart = 0,
    /** The links' shared-memory rings, when this thread may write them. */
    private readonly ring?: KvRingIo,
  ) {}

  get active(): boolean {
    return this.exported.size > 0;
  }

  track(transfer: TransferId, sequence: Sequence, skipPositions: number, ring?: string): void {
    this.exported.set(transfer, { sequence, skipPositions, sentUpTo: new Int32Array(this.numLayers).fill(skipPositions), ring });
  }

  untrack(transfer: TransferId): void {
    this.exported.delete(transfer);
    this.ring?.endTransfer?.(transfer);
  }

  /** Whether every layer has sent rows up to `positions`. */
  sentAll(transfer: TransferId, positions: number): boolean {
    const entry = this.exported.get(transfer);
    return entry !== undefined && entry.sentUpTo.every((end) => end >= positions);
  }

  /** `layer` of `batch` has run: send what it wrote for exported sequences. */
  afterLayer(layer: number, batch: Batch): void {
    for (const [transfer, entry] of this.exported) {
      const segment = batch.segments.find((candidate) => candidate.kv === entry.sequence.kv);
      if (!segment || segment.positions.length === 0) continue;
      const end = segment.positions[segment.positions.length - 1] + 1;
      const from = entry.sentUpTo[layer];
      if (end <= from) continue;
      const { keys, values, blockTable } = segment.kv;
      const keyPool = keys[layer];
      const count = end - from;
      const header: KvRowsHeader = { transfer, layer, from, count, headStart: this.headStart, headCount: keyPool.numKvHeads, dtype: keyPool.dtype };
      const ring = this.ring && entry.ring !== undefined ? { io: this.ring, id: entry.ring } : undefined;
      const parts = ring ? [...kvRowViews(keyPool, blockTable, from, count), ...kvRowViews(values[layer], blockTable, from, count)] : [];
      if (!ring?.io.writeRows(header, parts, ring.id)) {
        const keyRows = readKvRows(keyPool, blockTable, from, count);
        this.sink({ transfer, layer, from, count, headStart: this.headStart, headCount: keyPool.numKvHeads, keys: keyRows, values: readKvRows(values[layer], blockTable, from, count) });
      }
      entry.sentUpTo[layer] = end;
    }
  }
}
