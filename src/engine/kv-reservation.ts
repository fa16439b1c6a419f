/**
 * The decode side of a KV transfer: blocks held for a sequence whose prompt
 * another replica computes. The leading full blocks this replica already
 * caches (same prefix hash) are acquired and not sent again; fresh blocks
 * take the rest. Rows are written as they arrive, from any layout (by KV
 * head, kv-rows.ts), and the reservation counts, per layer and head, how
 * far the rows reach, so the sequence is admitted only when every row the
 * prefill computed is here.
 */
import { TesseraError } from '../core/errors.js';
import type { BlockManager } from './block-manager.js';
import type { KvRows, KvRowsHeader } from './kv-messages.js';
import { kvRowViews, writeKvRows, type KvRowData } from './kv-rows.js';

/**
 * Where a reservation's rows go when the pools are not in this thread: a
 * mesh's ranks (src/cluster/mesh-kv-import.ts). One per reservation.
 */
export interface KvRowSink {
  /** Writes a run into the blocks `blockTable` names. */
  write(rows: KvRows, blockTable: Int32Array): void;
  /** False once rows written can no longer be read where they went (a mesh re-sharded since): the transfer fails. */
  readonly intact: boolean;
}

/** The model's KV shape, all heads. */
export interface KvShape {
  numLayers: number;
  numKvHeads: number;
  headDim: number;
}

export class KvReservation {
  /** Per layer × head: rows [0, reached) are in the pool (cached rows count as reached). */
  private readonly reached: Int32Array;
  private released = false;

  private constructor(
    private readonly manager: BlockManager,
    /** Physical blocks for positions [0, positions), in order. */
    readonly blocks: number[],
    /** Prefix hashes of the leading blocks that came from this replica's cache. */
    readonly cachedHashes: string[],
    /** Tokens whose KV the sequence needs before it can decode: the prefill's whole input. */
    readonly positions: number,
    private readonly numLayers: number,
    private readonly numKvHeads: number,
    private readonly headDim: number,
    /** Where rows go (default: the manager's pools in this thread). */
    private readonly sink: KvRowSink | undefined,
  ) {
    this.reached = new Int32Array(numLayers * numKvHeads).fill(this.skipPositions);
  }

  /**
   * Blocks for the KV of `tokens` (prompt plus any resumed ids), or
   * undefined when too few are free. Cached full blocks count; the rest are
   * allocated now, so a transfer never waits for room that is not there.
   */
  static reserve(manager: BlockManager, tokens: readonly number[], shape: KvShape, sink?: KvRowSink): KvReservation | undefined {
    const size = manager.blockSize;
    const match = manager.matchPrefix(tokens, tokens.length);
    const needed = Math.ceil(tokens.length / size) - match.blocks.length;
    if (needed > manager.freeCount) return undefined;
    for (const block of match.blocks) manager.acquire(block);
    const blocks = [...match.blocks];
    for (let i = 0; i < needed; i++) blocks.push(manager.allocate() as number);
    manager.recordLookup(tokens.length, match.blocks.length * size);
    return new KvReservation(manager, blocks, match.hashes, tokens.length, shape.numLayers, shape.numKvHeads, shape.headDim, sink);
  }

  /** Rows below this were cached here: the sender skips them. */
  get skipPositions(): number {
    return this.cachedHashes.length * this.manager.blockSize;
  }

  /** Writes a run of rows into the held blocks (heads outside this pool are skipped). */
  write(rows: KvRows): void {
    if (this.released) return;
    this.check(rows);
    const pools = this.manager.cache;
    const table = Int32Array.from(this.blocks);
    if (this.sink) {
      this.sink.write(rows, table);
      return this.reach(rows);
    }
    const heads = { start: rows.headStart, count: rows.headCount };
    writeKvRows(pools.keys[rows.layer], table, rows.from, rows.keys, heads);
    writeKvRows(pools.values[rows.layer], table, rows.from, rows.values, heads);
    this.reach(rows);
  }

  /**
   * A run whose bits are elsewhere (a shared-memory ring): `read` fills the
   * byte views it is given, in order. Rows of every head of this pool are
   * read straight into the held blocks (one copy); another layout's run
   * goes through a buffer and is re-split by head.
   */
  readInto(rows: KvRowsHeader, read: (targets: readonly Uint8Array[] | undefined) => void): void {
    if (this.released) return read(undefined);
    this.check(rows);
    const pools = this.manager.cache;
    const keyPool = pools.keys[rows.layer];
    if (rows.dtype !== pools.dtype) throw new TesseraError('TESSERA_ERR_KV_TRANSFER_FAILED', `KV rows of ${rows.dtype} cannot go into a ${pools.dtype} cache; give both replicas the same --kv-cache-dtype`);
    const table = Int32Array.from(this.blocks);
    // Straight into this thread's pool when it holds every head of the run; else (another head split, or pools elsewhere) through a buffer.
    if (!this.sink && rows.headStart === 0 && rows.headCount === keyPool.numKvHeads) {
      read([...kvRowViews(keyPool, table, rows.from, rows.count), ...kvRowViews(pools.values[rows.layer], table, rows.from, rows.count)]);
      return this.reach(rows);
    }
    const elements = rows.count * rows.headCount * this.headDim;
    const make = (): KvRowData => (rows.dtype === 'f16' ? new Uint16Array(elements) : new Float32Array(elements));
    const [keys, values] = [make(), make()];
    read([new Uint8Array(keys.buffer), new Uint8Array(values.buffer)]);
    this.write({ ...rows, keys, values });
  }

  /** A run the writer put straight into the held blocks (src/disagg/kv-direct.ts): only counted. */
  written(rows: KvRowsHeader): void {
    if (this.released) return;
    this.check(rows);
    if (this.sink || rows.dtype !== this.manager.cache.dtype || rows.headStart < 0 || rows.headCount < 1 || rows.headStart + rows.headCount > this.numKvHeads) {
      throw new TesseraError('TESSERA_ERR_KV_TRANSFER_FAILED', `KV rows written directly must be heads of this replica's ${this.manager.cache.dtype} pools`);
    }
    this.reach(rows);
  }

  private check(rows: KvRowsHeader | KvRows): void {
    if (rows.layer < 0 || rows.layer >= this.numLayers || rows.from < 0 || rows.from + rows.count > this.positions) {
      throw new TesseraError('TESSERA_ERR_KV_TRANSFER_FAILED', `KV rows for layer ${rows.layer}, positions [${rows.from}, ${rows.from + rows.count}) fall outside the ${this.numLayers} layers × ${this.positions} positions reserved`);
    }
  }

  private reach(rows: KvRowsHeader | KvRows): void {
    const end = rows.from + rows.count;
    const first = Math.max(0, rows.headStart);
    const last = Math.min(this.numKvHeads, rows.headStart + rows.headCount);
    for (let head = first; head < last; head++) {
      const at = rows.layer * this.numKvHeads + head;
      // Runs arrive in order per layer and head; one that starts past the reach leaves a gap, which stays unreached.
      if (rows.from <= this.reached[at]) this.reached[at] = Math.max(this.reached[at], end);
    }
  }

  /** Every layer and head holds rows [0, positions). */
  get complete(): boolean {
    return this.reached.every((end) => end >= this.positions);
  }

  /** Whether the blocks are in this thread's pools (not a mesh's ranks): a writer on this host can reach them. */
  get local(): boolean {
    return this.sink === undefined && !this.released;
  }

  /** Whether the rows written are still where they went (always, in this thread's pools). */
  get intact(): boolean {
    return this.sink?.intact ?? true;
  }

  /** Gives the blocks back (the transfer failed or was cancelled). */
  release(): void {
    if (this.released) return;
    this.released = true;
    this.manager.release(this.blocks);
  }

  /** The blocks now belong to the admitted sequence: this reservation no longer frees them. */
  handOver(): number[] {
    this.released = true;
    return this.blocks;
  }
}
