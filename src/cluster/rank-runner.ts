/**
 * The step loop of one rank: stage 0 embeds, every stage runs its layers,
 * hands its hidden states to the same tensor-parallel rank of the next
 * stage, and the last stage computes logits (reported by its tp rank 0).
 * Each rank keeps the KV blocks of its own heads and layers per sequence.
 */
import { DEFAULT_BLOCK_SIZE, KvCache } from '../engine/kv-cache.js';
import { DEFAULT_KV_DTYPE, type KvDtype } from '../core/kv-dtype.js';
import type { Batch, BatchSegment, LogitRows, SequenceKv } from '../model/batch.js';
import { TesseraError } from '../core/errors.js';
import type { StageModel } from '../model/shard-stage.js';
import { placeOf, rankAt, type MeshShape } from '../parallel/mesh.js';
import { asFloats, floatBytes, type Transport } from '../parallel/transport.js';

/** One forward step of one sequence, as every rank receives it. */
export interface StepRequest {
  /** The engine's id for the sequence; ranks keep its KV blocks under it. */
  sequence: number;
  /** Tokens the sequence may grow to (sizes its KV blocks on first use). */
  capacity: number;
  /** [numTokens] */
  ids: Int32Array;
  /** [numTokens] */
  positions: Int32Array;
  rows: LogitRows;
}

export class RankRunner {
  private readonly sequences = new Map<number, SequenceKv>();

  constructor(
    readonly stage: StageModel,
    private readonly transport: Transport,
    private readonly shape: MeshShape,
    /** Element type of this rank's KV blocks. */
    private readonly kvDtype: KvDtype = DEFAULT_KV_DTYPE,
  ) {}

  /** Whether this rank's step result is the logits the engine gets. */
  get reports(): boolean {
    const place = placeOf(this.transport.rank, this.shape);
    return this.stage.isLast && place.tpRank === 0;
  }

  /** Runs this rank's part of a step; [rows, vocabSize] logits on the reporting rank, else undefined. */
  async step(request: StepRequest): Promise<Float32Array | undefined> {
    return this.stepBatch([request]);
  }

  /**
   * One step over several sequences: their tokens end to end, so every matrix
   * multiply (and every message between ranks) serves them all at once; the
   * logits of their rows come in request order.
   */
  async stepBatch(requests: readonly StepRequest[]): Promise<Float32Array | undefined> {
    const { stage, tpRank } = placeOf(this.transport.rank, this.shape);
    const batch = this.batchOf(requests);
    /** [numTokens, hiddenSize] */
    const hidden = this.stage.isFirst
      ? await this.stage.embed(batch.ids)
      : asFloats(await this.transport.receive(rankAt({ stage: stage - 1, tpRank }, this.shape)));
    await this.stage.runLayers(hidden, batch);
    if (!this.stage.isLast) {
      await this.transport.send(rankAt({ stage: stage + 1, tpRank }, this.shape), floatBytes(hidden));
      return undefined;
    }
    const logits = await this.stage.head(hidden, batch);
    return this.reports ? logits : undefined;
  }

  release(sequence: number): void {
    this.sequences.delete(sequence);
  }

  private batchOf(requests: readonly StepRequest[]): Batch {
    const ids = new Int32Array(requests.reduce((sum, request) => sum + request.ids.length, 0));
    const segments: BatchSegment[] = [];
    const seen = new Set<number>();
    let start = 0;
    for (const request of requests) {
      if (seen.has(request.sequence)) {
        throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `sequence ${request.sequence} appears twice in one step`);
      }
      seen.add(request.sequence);
      ids.set(request.ids, start);
      segments.push({ kv: this.kvOf(request), start, positions: request.positions, logits: request.rows });
      start += request.ids.length;
    }
    return { ids, segments };
  }

  private kvOf(request: StepRequest): SequenceKv {
    let kv = this.sequences.get(request.sequence);
    if (!kv) {
      kv = KvCache.forTokens(this.stage.kvConfig, request.capacity, DEFAULT_BLOCK_SIZE, this.kvDtype).allocate(request.capacity);
      this.sequences.set(request.sequence, kv);
    }
    return kv;
  }
}
