/**
 * The step loop of one rank: stage 0 embeds, every stage runs its layers,
 * hands its hidden states to the same tensor-parallel rank of the next
 * stage, and the last stage computes logits (reported by its tp rank 0),
 * or, when every row of the step is picked greedily and the logits are
 * split by vocabulary, only the ids (the ranks exchange each slice's best).
 * Each rank keeps one pool of KV blocks (its own heads, and only its own
 * stage's layers) that mirrors the driver's: same block count, same block
 * size, same block ids.
 * A step names each sequence by its block table, so blocks the driver
 * shares between sequences (prefix caching) are shared here too.
 */
import { KvCache } from '../engine/kv-cache.js';
import { DEFAULT_KV_DTYPE, kvDtypeBytes, type KvDtype } from '../core/kv-dtype.js';
import { totalmem } from 'node:os';
import type { Batch, BatchSegment, LogitRows } from '../model/batch.js';
import { SegmentError, TesseraError } from '../core/errors.js';
import type { StageModel } from '../model/shard-stage.js';
import { placeOf, rankAt, type MeshShape } from '../parallel/mesh.js';
import { asFloats, floatBytes, type Transport } from '../parallel/transport.js';
import { pickRows, type PickedRows, type TokenPick } from '../engine/token-pick.js';
import { kvRowViews, writeKvRows, type KvRowData } from '../engine/kv-rows.js';
import type { ControlMessage, KvReadRun } from './control-message.js';

/** A rank's KV rows of a kv-read (control-message.ts): for each run, for each layer, keys then values. */
export interface RankKvRows {
  layers: [number, number];
  /** Empty where another rank of the stage holds and sends the same (replicated) heads. */
  heads: [number, number];
  dtype: KvDtype;
  body: Uint8Array;
}

/** The driver's KV pool that every rank mirrors. A KvCache is one. */
export interface KvLayout {
  numBlocks: number;
  /** Tokens a block holds. */
  blockSize: number;
}

/** One forward step of one sequence, as every rank receives it. */
export interface StepRequest {
  /** The driver's block ids for the sequence, in order; position p lives in blockTable[p / blockSize]. */
  blockTable: Int32Array;
  /** [numTokens] */
  ids: Int32Array;
  /** [numTokens] */
  positions: Int32Array;
  rows: LogitRows;
  /** With rows 'last': the reporting rank picks the token (token-pick.ts) and returns its id instead of the row's logits. */
  pick?: TokenPick;
}

export class RankRunner {
  /** Allocated on the first step, at the driver's layout. */
  private pool: KvCache | undefined;

  constructor(
    readonly stage: StageModel,
    private readonly transport: Transport,
    private readonly shape: MeshShape,
    /** Element type of this rank's KV blocks. */
    private readonly kvDtype: KvDtype = DEFAULT_KV_DTYPE,
  ) {}

  /** This rank's KV pool (its own heads and layers), once the first step has sized it. */
  get kv(): KvCache | undefined {
    return this.pool;
  }

  /** Whether this rank's step result is the logits the engine gets. */
  get reports(): boolean {
    const place = placeOf(this.transport.rank, this.shape);
    return this.stage.isLast && place.tpRank === 0;
  }

  /** Runs this rank's part of a step; [rows, vocabSize] logits on the reporting rank, else undefined. */
  async step(layout: KvLayout, request: StepRequest): Promise<Float32Array | undefined> {
    return this.stepBatch(layout, [request]);
  }

  /**
   * stepBatch with the requests' picks made here, where the logits are: on
   * the reporting rank, an id for every row whose request has a pick and the
   * logits of the others; undefined elsewhere. `everywhere`: every rank of
   * the last stage picks too (they all hold the logits), for running ahead.
   */
  async stepPicked(layout: KvLayout, requests: readonly StepRequest[], everywhere = false): Promise<PickedRows | undefined> {
    if (this.picksGreedily(requests)) {
      // Every row greedy over vocab-split logits: the ranks exchange each slice's best, not the rows (vocab-argmax.ts).
      const ids = await this.forward(layout, requests, everywhere, async (hidden, batch) => ({ result: await this.stage.greedyIds(hidden, batch), filled: [] }));
      return ids && { ids, logits: new Float32Array(0) };
    }
    const logits = await this.stepBatch(layout, requests, everywhere);
    if (!logits) return undefined;
    const picks: (TokenPick | undefined)[] = [];
    for (const request of requests) {
      if (request.rows === 'all') for (let i = 0; i < request.ids.length; i++) picks.push(undefined);
      else if (request.rows === 'last' && request.ids.length > 0) picks.push(request.pick);
    }
    return pickRows(logits, picks, this.stage.config.vocabSize);
  }

  /**
   * Refuses a step this rank cannot run, before anything is sent or computed:
   * every rank checks the same things, so all refuse it together and none is
   * left waiting. A bad segment throws a SegmentError naming it.
   */
  validate(layout: KvLayout, requests: readonly StepRequest[]): void {
    const pool = this.poolFor(layout);
    requests.forEach((request, segment) => checkSegment(pool, request, this.stage.config.vocabSize, segment));
    // Every token a step computes takes its own KV slot, so no real step has more tokens than the pool holds; this bounds its activations.
    const tokens = requests.reduce((sum, request) => sum + request.ids.length, 0);
    if (tokens > pool.numBlocks * pool.blockSize) {
      throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `a step of ${tokens} tokens is more than the ${pool.numBlocks * pool.blockSize} its KV pool holds`);
    }
  }

  /**
   * The rows of `runs` this rank holds: its layers, its KV heads (none when a
   * rank before it in the stage holds the same replicated heads: one copy
   * travels). Read after every step before it, so they are the bits attention
   * reads. A run outside the pool throws a SegmentError naming it.
   */
  readKv(layout: KvLayout, runs: readonly KvReadRun[]): RankKvRows {
    const pool = this.poolFor(layout);
    runs.forEach((run, index) => checkRun(pool, run, index));
    const layers: [number, number] = [this.stage.plan.startLayer, this.stage.plan.endLayer];
    const [first, end] = this.stage.kvHeads;
    const heads: [number, number] = this.sendsKvHeads() ? [first, end] : [first, first];
    if (heads[1] === heads[0]) return { layers, heads, dtype: pool.dtype, body: new Uint8Array(0) };
    const views: Uint8Array[] = [];
    for (const run of runs) {
      const table = Int32Array.from(run.blockTable);
      for (let layer = layers[0]; layer < layers[1]; layer++) {
        views.push(...kvRowViews(pool.keys[layer], table, run.from, run.count), ...kvRowViews(pool.values[layer], table, run.from, run.count));
      }
    }
    const body = new Uint8Array(views.reduce((sum, view) => sum + view.byteLength, 0));
    let at = 0;
    for (const view of views) {
      body.set(view, at);
      at += view.byteLength;
    }
    return { layers, heads, dtype: pool.dtype, body };
  }

  /**
   * Rows another replica computed (a kv-write): the heads of them this rank
   * holds, if it holds the layer; the rest are another rank's. The run must
   * fit its block table and be the size its header says, in this pool's dtype.
   */
  writeKv(write: Omit<Extract<ControlMessage, { type: 'kv-write' }>, 'type' | 'generation'>, body: Uint8Array): void {
    const pool = this.poolFor(write.pool);
    checkRun(pool, write, -1);
    const { startLayer, endLayer } = this.stage.plan;
    if (write.layer < startLayer || write.layer >= endLayer) return;
    const [first, end] = write.heads;
    const elements = write.count * (end - first) * this.stage.config.headDim;
    if (write.dtype !== pool.dtype || end <= first || body.byteLength !== 2 * elements * kvDtypeBytes(pool.dtype)) {
      throw new TesseraError('TESSERA_ERR_PROTOCOL', `KV rows of ${write.dtype}, heads [${first}, ${end}), ${write.count} positions, came as ${body.byteLength} bytes for a ${pool.dtype} pool`);
    }
    // A copy of its own (a frame's body is a Buffer, whose slice() is a view): typed views need an aligned start.
    const bytes = new Uint8Array(body);
    const half = bytes.byteLength / 2;
    const data = (at: number): KvRowData => (pool.dtype === 'f16' ? new Uint16Array(bytes.buffer, at, elements) : new Float32Array(bytes.buffer, at, elements));
    const table = Int32Array.from(write.blockTable);
    const heads = { start: first, count: end - first };
    const into = { start: this.stage.kvHeads[0], count: this.stage.kvHeads[1] - this.stage.kvHeads[0] };
    writeKvRows(pool.keys[write.layer], table, write.from, data(0), heads, into);
    writeKvRows(pool.values[write.layer], table, write.from, data(half), heads, into);
  }

  /**
   * Whether this rank is the first of its stage to hold its KV heads: with
   * fewer KV heads than tp ranks several hold each, and the ranks of a
   * shared stage each hold them all.
   */
  private sendsKvHeads(): boolean {
    const { tpRank } = placeOf(this.transport.rank, this.shape);
    if (this.stage.sharesRows) return tpRank === 0;
    const { numKvHeads } = this.stage.config;
    const tp = this.shape.tp;
    return tpRank === 0 || numKvHeads >= tp || Math.floor(((tpRank - 1) * numKvHeads) / tp) !== Math.floor((tpRank * numKvHeads) / tp);
  }

  /**
   * One step over several sequences: their tokens end to end, so every matrix
   * multiply (and every message between ranks) serves them all at once; the
   * logits of their rows come in request order. Every rank checks the step
   * before it sends or receives anything, so a refused step leaves no rank
   * waiting on another.
   */
  async stepBatch(layout: KvLayout, requests: readonly StepRequest[], everywhere = false): Promise<Float32Array | undefined> {
    return this.forward(layout, requests, everywhere, async (hidden, batch) => {
      const logits = await this.stage.head(hidden, batch);
      return { result: logits, filled: [logits] };
    });
  }

  /** Every row of the step is a last row picked greedily, and the last stage's logits are split by vocabulary across its ranks. */
  private picksGreedily(requests: readonly StepRequest[]): boolean {
    return this.stage.isLast && this.stage.splitsLogits && requests.length > 0 && requests.every((request) => request.rows === 'last' && request.ids.length > 0 && request.pick?.temperature === 0);
  }

  /**
   * The step through this rank's layers; on the last stage `finish` turns
   * the hidden states into its result (and names the arrays a device step
   * fills), returned on the reporting rank (every rank: `everywhere`).
   */
  private async forward<T>(
    layout: KvLayout,
    requests: readonly StepRequest[],
    everywhere: boolean,
    finish: (hidden: Float32Array, batch: Batch) => Promise<{ result: T; filled: Float32Array[] }>,
  ): Promise<T | undefined> {
    const { stage, tpRank } = placeOf(this.transport.rank, this.shape);
    const batch = this.batchOf(this.poolFor(layout), requests);
    // On a device backend the rank's ops run as device steps: one submission between two collectives, not one per op.
    this.stage.beginStep();
    let ended = false;
    try {
      /** [numTokens, hiddenSize] */
      const hidden = this.stage.isFirst ? await this.stage.embed(batch.ids) : await this.receiveHidden(rankAt({ stage: stage - 1, tpRank }, this.shape), batch.ids.length);
      await this.stage.runLayers(hidden, batch);
      if (!this.stage.isLast) {
        ended = true;
        this.stage.endStep([hidden]);
        await this.transport.send(rankAt({ stage: stage + 1, tpRank }, this.shape), floatBytes(hidden));
        return undefined;
      }
      const { result, filled } = await finish(hidden, batch);
      ended = true;
      this.stage.endStep(filled);
      return this.reports || everywhere ? result : undefined;
    } finally {
      if (!ended) this.stage.endStep([]);
    }
  }

  /** [numTokens, hiddenSize] from the previous stage; its size is checked before any layer reads it (a short frame would read past its end). */
  private async receiveHidden(peer: number, numTokens: number): Promise<Float32Array> {
    const bytes = await this.transport.receive(peer);
    const expected = numTokens * this.stage.config.hiddenSize * 4;
    if (bytes.byteLength !== expected) {
      throw new TesseraError('TESSERA_ERR_PROTOCOL', `rank ${peer} sent ${bytes.byteLength} bytes of hidden states where this step takes ${expected} (${numTokens} tokens × ${this.stage.config.hiddenSize} × 4)`);
    }
    return asFloats(bytes);
  }

  /** This rank's pool; the first step sizes it, later steps must name the same layout. */
  private poolFor({ numBlocks, blockSize }: KvLayout): KvCache {
    if (!Number.isInteger(numBlocks) || numBlocks < 1 || !Number.isInteger(blockSize) || blockSize < 1) {
      throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `a step names a KV pool of ${numBlocks} blocks of ${blockSize} tokens; both must be positive integers`);
    }
    if (!this.pool) checkPoolFits(this.stage.kvConfig, this.stage.plan.endLayer - this.stage.plan.startLayer, numBlocks, blockSize, this.kvDtype);
    // Pools for this stage's layers only: a pipeline stage never touches the others.
    this.pool ??= new KvCache(this.stage.kvConfig, numBlocks, blockSize, this.kvDtype, [this.stage.plan.startLayer, this.stage.plan.endLayer]);
    if (this.pool.numBlocks !== numBlocks || this.pool.blockSize !== blockSize) {
      throw new TesseraError(
        'TESSERA_ERR_INVALID_ARGUMENT',
        `a step names a KV pool of ${numBlocks} blocks of ${blockSize} tokens, but this rank mirrors one of ${this.pool.numBlocks} blocks of ${this.pool.blockSize}; one driver (one KV pool) per mesh`,
      );
    }
    return this.pool;
  }

  private batchOf(pool: KvCache, requests: readonly StepRequest[]): Batch {
    const ids = new Int32Array(requests.reduce((sum, request) => sum + request.ids.length, 0));
    const segments: BatchSegment[] = [];
    let start = 0;
    for (const [segment, request] of requests.entries()) {
      checkSegment(pool, request, this.stage.config.vocabSize, segment);
      ids.set(request.ids, start);
      segments.push({ kv: { keys: pool.keys, values: pool.values, blockTable: request.blockTable }, start, positions: request.positions, logits: request.rows });
      start += request.ids.length;
    }
    return { ids, segments };
  }
}

/** Every block id inside the pool, a block for every position the request writes, every id in the vocabulary. */
function checkSegment(pool: KvCache, { blockTable, positions, ids, rows, pick }: StepRequest, vocabSize: number, segment: number): void {
  const refuse = (message: string): never => {
    throw new SegmentError('TESSERA_ERR_INVALID_ARGUMENT', message, segment);
  };
  if (pick && rows !== 'last') refuse(`a segment whose logit rows are '${rows}' asks for a pick; only a 'last' row is picked`);
  for (const block of blockTable) {
    if (block < 0 || block >= pool.numBlocks) refuse(`block ${block} of a step's block table is outside this rank's KV pool [0, ${pool.numBlocks})`);
  }
  const reach = blockTable.length * pool.blockSize;
  for (const position of positions) {
    if (!Number.isInteger(position) || position < 0 || position >= reach) refuse(`position ${position} is outside the ${reach} tokens its block table holds`);
  }
  if (ids.length !== positions.length) refuse(`a segment has ${ids.length} ids but ${positions.length} positions`);
  for (const id of ids) {
    if (!(id >= 0 && id < vocabSize)) refuse(`token id ${id} is outside the vocabulary [0, ${vocabSize})`);
  }
}

/** Every block id of a kv-read run inside the pool, and its positions inside what its block table holds. */
function checkRun(pool: KvCache, { blockTable, from, count }: KvReadRun, index: number): void {
  for (const block of blockTable) {
    if (block < 0 || block >= pool.numBlocks) throw new SegmentError('TESSERA_ERR_INVALID_ARGUMENT', `block ${block} of a KV read's block table is outside this rank's KV pool [0, ${pool.numBlocks})`, index);
  }
  const reach = blockTable.length * pool.blockSize;
  if (from + count > reach) throw new SegmentError('TESSERA_ERR_INVALID_ARGUMENT', `a KV read of positions [${from}, ${from + count}) reaches past the ${reach} tokens its block table holds`, index);
}

/** The pool's size comes from the driver's message: refuse one larger than this machine's memory before allocating it. */
function checkPoolFits(config: { numKvHeads: number; headDim: number }, layers: number, numBlocks: number, blockSize: number, dtype: KvDtype): void {
  const bytes = 2 * layers * numBlocks * blockSize * config.numKvHeads * config.headDim * kvDtypeBytes(dtype);
  if (bytes > totalmem()) {
    throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `a KV pool of ${numBlocks} blocks of ${blockSize} tokens needs ${bytes} bytes on this rank, more than its ${totalmem()} bytes of memory`);
  }
}
