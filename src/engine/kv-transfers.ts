/**
 * An engine core's side of KV transfers, in the thread that owns the core:
 * sequences it prefills for a decode replica (their rows stream out layer
 * by layer through the KvExporter; after the first sampled token the
 * sequence leaves this core and its ids go after the rows), and sequences
 * it decodes after another replica's prefill (KV blocks reserved, rows
 * written as they arrive, admitted once every row and the prefill's ids
 * are in). Everything it says goes through `send`; a sequence it cannot
 * go on with is refused through `reject` (the host fails it).
 */
import { isTesseraError, TesseraError } from '../core/errors.js';
import type { Batch } from '../model/batch.js';
import type { EngineCore } from './engine-core.js';
import { KvExporter, type KvExport } from './kv-export.js';
import type { KvFromEngine, KvRingIo, KvRole, KvRows, KvToEngine, TransferId } from './kv-messages.js';
import { KvReservation, type KvRowSink } from './kv-reservation.js';
import type { LayerTap } from './layer-tap-runner.js';
import type { SequenceOutput, SequenceRequest } from './sequence.js';

interface Import {
  reservation: KvReservation;
  /** The sequence the blocks are for, once it is submitted. */
  sequenceId: number | undefined;
  request: SequenceRequest | undefined;
  /** The prefill's sampled ids, once committed. */
  ids: number[] | undefined;
  /** The ring of the link whose prefill engine knows these blocks and writes into them directly (src/disagg/kv-direct.ts). */
  exposed: string | undefined;
}

export interface KvTransfersOptions {
  send: (message: KvFromEngine) => void;
  reject: (sequenceId: number, code: string, message: string) => void;
  /** The links' shared-memory rings, read and written by this thread (else rows travel in messages). */
  ring?: KvRingIo;
  /** The decode side's writer of a reservation's rows, one per reservation (default: this thread's pools). */
  importer?: () => KvRowSink;
  /** The prefill side's exporter, given the sink of its rows (default: layer taps on this thread's pools, KvExporter). */
  exporter?: (sink: (rows: KvRows) => void) => KvExport;
}

export class KvTransfers implements LayerTap {
  private readonly exporter: KvExport;
  /** Sequence id → its transfer, on the prefill side. */
  private readonly exports = new Map<number, TransferId>();
  private readonly imports = new Map<TransferId, Import>();
  /** Given-up reservations a direct writer may still write into: freed on 'unhold'. */
  private readonly held = new Map<TransferId, KvReservation>();

  constructor(
    private readonly core: EngineCore,
    private readonly options: KvTransfersOptions,
  ) {
    const sink = (rows: KvRows): void => options.send({ type: 'rows', ...rows });
    this.exporter = options.exporter?.(sink) ?? new KvExporter(core.config.numLayers, sink, 0, options.ring);
  }

  get active(): boolean {
    return this.exporter.active;
  }

  afterLayer(layer: number, batch: Batch): void {
    this.exporter.afterLayer(layer, batch);
  }

  /** A new sequence with a part in a transfer; throws (a coded error) when it cannot take it. */
  add(sequenceId: number, request: SequenceRequest, role: KvRole): void {
    if ('send' in role) {
      this.core.add(sequenceId, request);
      this.exporter.track(role.send.transfer, this.core.sequence(sequenceId)!, role.send.skipPositions, role.send.ring);
      this.exports.set(sequenceId, role.send.transfer);
      return;
    }
    const entry = this.imports.get(role.receive.transfer);
    if (!entry || entry.sequenceId !== undefined) throw new TesseraError('TESSERA_ERR_KV_TRANSFER_FAILED', `no KV blocks are reserved for transfer ${role.receive.transfer}; reserve them first`);
    const tokens = request.promptIds.length + (request.resumeIds?.length ?? 0);
    if (tokens !== entry.reservation.positions) throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `transfer ${role.receive.transfer} reserved ${entry.reservation.positions} positions but the sequence has ${tokens} tokens`);
    entry.sequenceId = sequenceId;
    entry.request = request;
    this.admitWhenComplete(role.receive.transfer, entry);
  }

  apply(message: KvToEngine): void {
    if (message.type === 'reserve') return this.reserve(message.transfer, message.tokens);
    if (message.type === 'ring-rows') return this.ringRows(message);
    const transfer = message.type === 'direct-rows' ? message.rows.transfer : message.transfer;
    const entry = this.imports.get(transfer);
    if (!entry) return; // released meanwhile: what is still in flight for it is dropped
    if (message.type === 'release') return this.release(transfer, entry);
    try {
      if (message.type === 'rows') entry.reservation.write(message);
      else if (message.type === 'direct-rows') entry.reservation.written(message.rows);
      else if (message.type === 'commit') entry.ids = message.ids;
      else throw new TesseraError('TESSERA_ERR_KV_TRANSFER_FAILED', message.message);
      this.admitWhenComplete(transfer, entry);
    } catch (error) {
      this.failImport(transfer, entry, error);
    }
  }

  /** `transfer`'s blocks go to the prefill engine of `ring`'s link, which writes into them directly; undefined when it is not reserved here. */
  expose(transfer: TransferId, ring: string): { blocks: number[]; positions: number } | undefined {
    const entry = this.imports.get(transfer);
    if (!entry || entry.exposed !== undefined || !entry.reservation.local) return undefined;
    entry.exposed = ring;
    return { blocks: [...entry.reservation.blocks], positions: entry.reservation.positions };
  }

  /** No direct write into `transfer`'s held blocks can come any more. */
  unhold(transfer: TransferId): void {
    this.held.get(transfer)?.release();
    this.held.delete(transfer);
  }

  /** Rows in a shared-memory ring: read straight into the reserved blocks; the slot is given back whatever happens. */
  private ringRows(message: Extract<KvToEngine, { type: 'ring-rows' }>): void {
    const transfer = message.rows.transfer;
    const entry = this.imports.get(transfer);
    let consumed = false;
    const read = (targets: readonly Uint8Array[] | undefined): void => {
      consumed = true;
      this.options.ring?.readRows(message.slot, targets, targets ? transfer : undefined);
    };
    try {
      if (!entry) return; // released meanwhile: skipped
      entry.reservation.readInto(message.rows, read);
      this.admitWhenComplete(transfer, entry);
    } catch (error) {
      if (entry) this.failImport(transfer, entry, error);
    } finally {
      if (!consumed) read(undefined);
    }
  }

  private reserve(transfer: TransferId, tokens: readonly number[]): void {
    const reservation = KvReservation.reserve(this.core.blocks, tokens, this.core.config, this.options.importer?.());
    if (!reservation) return this.options.send({ type: 'reserved', transfer, skipPositions: 0, blocks: -1 });
    this.imports.set(transfer, { reservation, sequenceId: undefined, request: undefined, ids: undefined, exposed: undefined });
    this.options.send({ type: 'reserved', transfer, skipPositions: reservation.skipPositions, blocks: reservation.blocks.length });
  }

  private release(transfer: TransferId, entry: Import): void {
    this.letGo(transfer, entry);
    this.imports.delete(transfer);
  }

  /** Frees a given-up reservation's blocks, or holds them while a direct writer may still write there. */
  private letGo(transfer: TransferId, entry: Import): void {
    if (entry.exposed === undefined) return entry.reservation.release();
    this.held.set(transfer, entry.reservation);
    this.options.send({ type: 'held', transfer, ring: entry.exposed });
  }

  /** The host cancelled a sequence: free what a transfer holds for it. */
  cancel(sequenceId: number): void {
    for (const [transfer, entry] of this.imports) if (entry.sequenceId === sequenceId) this.release(transfer, entry);
    const exported = this.exports.get(sequenceId);
    if (exported !== undefined) this.endExport(sequenceId, exported);
  }

  /** After a step: an exported sequence that sampled its first token leaves for its decode replica. */
  afterStep(outputs: readonly SequenceOutput[]): void {
    for (const output of outputs) {
      const transfer = this.exports.get(output.sequenceId);
      if (transfer === undefined) continue;
      const sequence = this.core.sequence(output.sequenceId);
      const handOff = !output.finish && output.ids.length > 0 && sequence !== undefined && this.exporter.sentAll(transfer, sequence.numComputed);
      if (!handOff) {
        // Finished at its first token (or failed): the decode side has nothing to continue.
        if (output.finish === undefined) this.core.detach(output.sequenceId);
        this.endExport(output.sequenceId, transfer);
        continue;
      }
      this.core.detach(output.sequenceId);
      this.exports.delete(output.sequenceId);
      this.exporter.untrack(transfer);
      this.options.send({ type: 'handoff', transfer, sequenceId: output.sequenceId, ids: output.ids });
    }
  }

  private endExport(sequenceId: number, transfer: TransferId): void {
    this.exports.delete(sequenceId);
    this.exporter.untrack(transfer);
    this.options.send({ type: 'export-ended', transfer, sequenceId });
  }

  private admitWhenComplete(transfer: TransferId, entry: Import): void {
    if (entry.ids === undefined || entry.sequenceId === undefined || entry.request === undefined || !entry.reservation.complete) return;
    if (!entry.reservation.intact) {
      return this.failImport(transfer, entry, new TesseraError('TESSERA_ERR_KV_TRANSFER_FAILED', `the KV rows of transfer ${transfer} were lost where they were written (the mesh re-sharded); prefill the sequence again`));
    }
    this.imports.delete(transfer);
    const { reservation, sequenceId } = entry;
    const request: SequenceRequest = { ...entry.request, resumeIds: [...(entry.request.resumeIds ?? []), ...entry.ids] };
    this.core.add(sequenceId, request, { blocks: reservation.blocks, blockHashes: reservation.cachedHashes, numComputed: reservation.positions });
    reservation.handOver();
    this.options.send({ type: 'admitted', transfer, sequenceId });
  }

  private failImport(transfer: TransferId, entry: Import, error: unknown): void {
    this.imports.delete(transfer);
    this.letGo(transfer, entry);
    const code = isTesseraError(error) ? error.code : 'TESSERA_ERR_KV_TRANSFER_FAILED';
    // Not yet submitted: the host hears of it when it submits (no reservation) or releases it.
    if (entry.sequenceId !== undefined) this.options.reject(entry.sequenceId, code, error instanceof Error ? error.message : String(error));
  }
}
