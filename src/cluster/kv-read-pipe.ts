/**
 * KV reads in flight on the mesh (a KV export reading sequences' rows back
 * from the ranks, src/cluster/mesh-kv-export.ts), by id. Every rank of the
 * plan answers one: its rows (`kv-rows`, the layers and heads it holds), or
 * a refusal; the read resolves when every rank has answered. Ids come from
 * the step pipe's counter, so a rank's failure naming an id never names a
 * step and a read alike. A reply's body is checked against its header and
 * the read's tokens before anyone reads it.
 */
import { TesseraError } from '../core/errors.js';
import { kvDtypeBytes, type KvDtype } from '../core/kv-dtype.js';
import type { Envelope } from './control-message.js';

/** One rank's answer: for each run, for each layer of `layers`, keys [count, heads, headDim] then values. */
export interface KvRankRows {
  layers: readonly [number, number];
  heads: readonly [number, number];
  dtype: KvDtype;
  body: Uint8Array;
}

interface Pending {
  generation: number;
  /** Rows summed over the read's runs. */
  tokens: number;
  /** Ranks that must answer. */
  ranks: number;
  parts: KvRankRows[];
  resolve: (parts: KvRankRows[]) => void;
  reject: (error: Error) => void;
}

export class KvReadPipe {
  private readonly pending = new Map<number, Pending>();

  constructor(
    private readonly headDim: number,
    private readonly takeId: () => number,
  ) {}

  get size(): number {
    return this.pending.size;
  }

  /** A read of `tokens` rows (all runs together) that `ranks` ranks answer: its id and its answers. */
  open(generation: number, tokens: number, ranks: number): { id: number; result: Promise<KvRankRows[]> } {
    const id = this.takeId();
    const result = new Promise<KvRankRows[]>((resolve, reject) => this.pending.set(id, { generation, tokens, ranks, parts: [], resolve, reject }));
    return { id, result };
  }

  /** Why a kv-rows frame cannot be what its read asked for, or undefined (a read no longer in flight is dropped unread). */
  check({ message, body }: Envelope): TesseraError | undefined {
    if (message.type !== 'kv-rows') return undefined;
    const pending = this.pending.get(message.id);
    if (!pending) return undefined;
    const [firstLayer, endLayer] = message.layers;
    const [firstHead, endHead] = message.heads;
    if (endLayer < firstLayer || endHead < firstHead) return new TesseraError('TESSERA_ERR_PROTOCOL', `KV rows of read ${message.id} name layers [${firstLayer}, ${endLayer}) and heads [${firstHead}, ${endHead})`);
    const expected = 2 * pending.tokens * (endLayer - firstLayer) * (endHead - firstHead) * this.headDim * kvDtypeBytes(message.dtype);
    if (body.byteLength !== expected) return new TesseraError('TESSERA_ERR_PROTOCOL', `KV rows of read ${message.id} came as ${body.byteLength} bytes; its header and runs say ${expected}`);
    return undefined;
  }

  answer(id: number, part: KvRankRows): void {
    const pending = this.pending.get(id);
    if (!pending) return;
    pending.parts.push(part);
    if (pending.parts.length < pending.ranks) return;
    this.pending.delete(id);
    pending.resolve(pending.parts);
  }

  refuse(id: number, error: Error): void {
    const pending = this.pending.get(id);
    this.pending.delete(id);
    pending?.reject(error);
  }

  /** Fails every read of `generation` and older ones. */
  failGeneration(generation: number, error: Error): void {
    for (const [id, pending] of this.pending) {
      if (pending.generation <= generation) this.refuse(id, error);
    }
  }
}
