/**
 * What moves between an engine core's thread and the process around it
 * when a sequence's KV goes from a prefill replica to a decode replica:
 * the sequence's part in a transfer (its KvRole), runs of KV rows, and the
 * ids that end the prefill. Plain data (structured-clone messages between
 * threads; the rows' buffers are transferred, not copied).
 */
import type { KvDtype } from '../core/kv-dtype.js';
import type { KvRowData } from './kv-rows.js';

/** One transfer's id: random, unique across replicas (made by the router). */
export type TransferId = string & { readonly __brand: 'TransferId' };

/**
 * A sequence's part in a transfer.
 * - `send` (prefill replica): compute the prompt, stream its KV rows from
 *   position `skipPositions` on (the decode replica holds the rest), sample
 *   the first token, then hand the sequence off. `ring`: its link's
 *   shared-memory ring, when this thread writes the rows there itself.
 * - `receive` (decode replica): hold KV blocks for the prompt, take the
 *   rows as they arrive, and admit the sequence once the prefill's ids came.
 */
export type KvRole = { send: { transfer: TransferId; skipPositions: number; ring?: string } } | { receive: { transfer: TransferId } };

/** Positions [from, from + count) of one layer, KV heads [headStart, headStart + headCount): keys and values [count, headCount, headDim]. */
export interface KvRows {
  transfer: TransferId;
  layer: number;
  from: number;
  count: number;
  headStart: number;
  headCount: number;
  keys: KvRowData;
  values: KvRowData;
}

/** A rows frame without its keys and values (their bits are somewhere else: in a shared-memory ring). */
export type KvRowsHeader = Omit<KvRows, 'keys' | 'values'> & { dtype: KvDtype };

/**
 * A payload in a link's shared-memory ring: `bytes` at `offset` of ring
 * `ring`; `end` counts every ring byte used up to it (the reader's
 * acknowledgement); `writeMs` is how long the writer's copy took.
 */
export interface RingSlot {
  ring: string;
  offset: number;
  bytes: number;
  end: number;
  writeMs: number;
}

/**
 * The engine thread's own access to its KV links' shared-memory rings
 * (src/disagg/kv-ring.ts), so the rows are copied by the thread that owns
 * the pool, straight between the pool and the ring: no copy on an event
 * loop, none into a message.
 */
export interface KvRingIo {
  /** Prefill side: the payload (keys runs then values runs, views on the pool) written into `ring`; false when it has no room now (or is gone). */
  writeRows(header: KvRowsHeader, parts: readonly Uint8Array[], ring: string): boolean;
  /** Decode side: the payload at `slot` read into `targets` in order (undefined: not wanted, skipped); the host hears it is read (its ring space is free again). */
  readRows(slot: RingSlot, targets: readonly Uint8Array[] | undefined, transfer: TransferId | undefined): void;
  /** Prefill side: the transfer is over here (nothing more of it is written anywhere). */
  endTransfer?(transfer: TransferId): void;
}

/** To the engine's thread. */
export type KvToEngine =
  /** Decode side, before the sequence: hold blocks for the KV of `tokens` (prompt and resumed ids). */
  | { type: 'reserve'; transfer: TransferId; tokens: number[] }
  /** Decode side: the reservation is not wanted any more (nothing was submitted for it). */
  | { type: 'release'; transfer: TransferId }
  | ({ type: 'rows' } & KvRows)
  /** Decode side: rows whose bits are in a shared-memory ring (read there by this thread). */
  | { type: 'ring-rows'; rows: KvRowsHeader; slot: RingSlot }
  /** Decode side: rows the prefill engine wrote straight into the reserved blocks (src/disagg/kv-direct.ts). */
  | { type: 'direct-rows'; rows: KvRowsHeader }
  /** The prefill's sampled ids (one): the decode side admits the sequence once its rows are all in. */
  | { type: 'commit'; transfer: TransferId; ids: number[] }
  /** The transfer cannot finish: fail its sequence with this code (retryable: the router prefills again). */
  | { type: 'abort'; transfer: TransferId; message: string };

/** From the engine's thread. */
export type KvFromEngine =
  /** Decode side: `blocks` are held (-1: too few are free); positions below skipPositions were cached here and need not be sent. */
  | { type: 'reserved'; transfer: TransferId; skipPositions: number; blocks: number }
  /**
   * Decode side: the transfer was given up, but its blocks stay held: the
   * prefill engine at `ring`'s link may still be writing into them (until it
   * says it stopped, or its process is gone; src/disagg/direct-holds.ts).
   */
  | { type: 'held'; transfer: TransferId; ring: string }
  /** Decode side: every row and the ids arrived; the sequence joined the scheduler. */
  | { type: 'admitted'; transfer: TransferId; sequenceId: number }
  /** Prefill side: rows computed by the latest layer. */
  | ({ type: 'rows' } & KvRows)
  /** Prefill side: the first token was sampled and the sequence left this engine; `ids` go to the decode side. */
  | { type: 'handoff'; transfer: TransferId; sequenceId: number; ids: number[] }
  /** Prefill side: the sequence ended (finished at its first token, failed or was cancelled): nothing more to send. */
  | { type: 'export-ended'; transfer: TransferId; sequenceId: number };
