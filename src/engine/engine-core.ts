/**
 * The step loop of a server replica: schedule → one batched forward pass →
 * sample → emit. Requests join and leave between steps (continuous
 * batching). The model is reached only through `ModelRunner.forwardBatch`,
 * so a sharded executor (tensor or pipeline parallel) can stand in for the
 * in-process Transformer.
 *
 * Determinism: a token's computation sees only its own sequence's tokens and
 * KV (the Transformer is batch-invariant, and cached prefix blocks hold the
 * very bits the sequence would have computed), and its draw is a function of
 * (seed, position). So outputs do not depend on who else is in the batch,
 * on chunking, on prefix-cache hits or on preemption.
 */
import type { ModelConfig } from '../core/model-config.js';
import { isTesseraError, SegmentError, TesseraError } from '../core/errors.js';
import type { Batch, BatchSegment, SequenceKv } from '../model/batch.js';
import type { Tokenizer } from '../tokenizer/tokenizer.js';
import { DEFAULT_KV_DTYPE, parseKvDtype, type KvDtype } from '../core/kv-dtype.js';
import { BlockManager, blockBytes } from './block-manager.js';
import { DEFAULT_BLOCK_SIZE } from './kv-cache.js';
import { topLogprobs } from './sampler.js';
import { sampleGuided } from './guided-sampler.js';
import { TokenGrammarCache } from './token-grammar-cache.js';
import type { ExpertLoadSnapshot } from '../model/moe-expert-load.js';
import { Scheduler, type ScheduledChunk } from './scheduler.js';
import { StepFlights } from './step-flights.js';
import { checkSequenceRequest } from './request-checks.js';
import { Sequence, type SequenceOutput, type SequenceRequest, type TokenLogprob } from './sequence.js';
import { pickFor, unpicked, type PickedRows, type TokenPick } from './token-pick.js';

/** What the engine core needs of a model. `Transformer` is one. */
export interface ModelRunner {
  /** Logits [rows, vocabSize] of the rows the batch's segments ask for, in segment order. */
  forwardBatch(batch: Batch): Promise<Float32Array>;
  /**
   * The forward pass with tokens picked where the logits are (a mesh's
   * reporting rank, token-pick.ts), so ids travel instead of logits.
   * picks[s]: how to pick segment s's last-row token, or undefined to get its
   * logits. Runners without it return every row's logits.
   */
  forwardPicked?(batch: Batch, picks: readonly (TokenPick | undefined)[]): Promise<PickedRows>;
  /** Tokens routed to each expert so far, for MoE models run in this process. */
  readonly expertLoad?: { snapshot(): ExpertLoadSnapshot };
  /** Layers whose KV pools the core allocates (default all); a mesh, whose ranks hold the KV, says [0, 0]. */
  readonly kvPoolLayers?: readonly [number, number];
  /**
   * Forward passes over disjoint sequences the runner works on at once
   * (default 1): a pipeline-parallel mesh says its stage count, and the core
   * keeps that many groups in flight (step-flights.ts).
   */
  readonly pipelineGroups?: number;
  /** Whether the runner computes a decode step ahead of being asked (src/cluster/run-ahead.ts): the core then reserves each sequence's next block a token early. */
  readonly runsAhead?: boolean;
  /**
   * Decode steps the runner computes per forward when every row is picked
   * (a one-stage mesh's bursts, src/cluster/decode-burst.ts; default 1): the
   * core sends the later positions' uniforms with the picks and reserves
   * their blocks; the runner answers the following steps itself.
   */
  readonly decodeBurst?: number;
}

export interface EngineCoreOptions {
  /** KV cache budget in MiB (keys and values, all layers, at kvCacheDtype's bytes an element). */
  kvCacheMib: number;
  /** Exactly this many KV blocks instead of what kvCacheMib holds (Engine.generate sizes its pool to the request, or to the mesh's pool). */
  numBlocks?: number;
  /** Element type of the KV cache (default f32); f16 fits twice the blocks in the budget. */
  kvCacheDtype?: KvDtype;
  maxNumSeqs: number;
  /** Tokens per step (decode + chunked prefill). */
  maxBatchTokens: number;
  /** Longest prompt + output; capped by the model's context and the KV cache. */
  maxModelLen?: number;
  blockSize?: number;
  /**
   * Share full blocks between sequences (default true). Ranks of a mesh
   * mirror these blocks by id, so it works there too.
   */
  prefixCaching?: boolean;
  /** Prompts with the fewest tokens left first (Scheduler's shortestPromptFirst; a prefill replica's default). */
  shortestPromptFirst?: boolean;
}

/** KV another replica computed for a sequence's first `numComputed` tokens, in blocks it holds here. */
export interface PrefilledKv {
  blocks: number[];
  /** Prefix hashes of the leading blocks that were already cached here (the rest are named as the sequence advances). */
  blockHashes: string[];
  numComputed: number;
}

export const DEFAULT_CORE_OPTIONS: EngineCoreOptions = { kvCacheMib: 256, maxNumSeqs: 64, maxBatchTokens: 512 };

/** Counters and gauges after a step, for metrics. */
export interface StepStats {
  /** Sequences computed in this step (0 for a step with nothing to do). */
  batchSequences: number;
  batchTokens: number;
  waiting: number;
  running: number;
  blocksUsed: number;
  blocksFree: number;
  prefixQueriedTokens: number;
  prefixHitTokens: number;
  preemptions: number;
  /** [numLayers][numExperts] tokens routed so far (MoE models; empty rows for dense layers). */
  expertTokens?: number[][];
}

export interface StepReport {
  outputs: SequenceOutput[];
  stats: StepStats;
}

export class EngineCore {
  readonly blocks: BlockManager;
  readonly scheduler: Scheduler;
  readonly maxModelLen: number;
  private readonly sequences = new Map<number, Sequence>();
  private readonly eos: ReadonlySet<number>;
  /** Outputs produced outside a step (cancellations), sent with the next report. */
  private readonly pending: SequenceOutput[] = [];
  /** Compiled output constraints, shared by requests that ask for the same one. */
  private readonly grammars: TokenGrammarCache;
  /** Forward passes in flight (more than one only for a pipelined runner). */
  /** Whether the runner computes decode steps ahead (read once: the scheduler reserves blocks for it). */
  private readonly runsAhead: boolean;
  private readonly flights = new StepFlights();

  constructor(
    private readonly runner: ModelRunner,
    readonly config: ModelConfig,
    private readonly tokenizer: Tokenizer,
    options: EngineCoreOptions = DEFAULT_CORE_OPTIONS,
  ) {
    const blockSize = options.blockSize ?? DEFAULT_BLOCK_SIZE;
    const dtype = parseKvDtype(options.kvCacheDtype ?? DEFAULT_KV_DTYPE, 'kvCacheDtype');
    const numBlocks = options.numBlocks ?? Math.floor((options.kvCacheMib * 2 ** 20) / blockBytes(config, blockSize, dtype));
    this.blocks = new BlockManager(config, numBlocks, blockSize, options.prefixCaching ?? true, dtype, runner.kvPoolLayers);
    this.maxModelLen = Math.min(options.maxModelLen ?? config.contextLength, config.contextLength, numBlocks * blockSize);
    if (this.maxModelLen < 2) {
      throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', `the KV cache holds only ${numBlocks * blockSize} tokens; raise --kv-cache-mib`);
    }
    this.runsAhead = runner.runsAhead === true;
    const blockAhead = Math.max(this.runsAhead ? 1 : 0, burstOf(runner) - 1);
    this.scheduler = new Scheduler(this.blocks, { maxNumSeqs: options.maxNumSeqs, maxBatchTokens: options.maxBatchTokens, blockAhead, shortestPromptFirst: options.shortestPromptFirst });
    this.eos = new Set(config.eosTokenIds);
    this.grammars = new TokenGrammarCache(tokenizer, config.vocabSize);
  }

  get hasWork(): boolean {
    return this.scheduler.hasWork || this.pending.length > 0;
  }

  /**
   * Queues a sequence; it runs from the next step on. `prefilled`: the KV of
   * its first tokens is already in these blocks (another replica computed
   * it, kv-reservation.ts), so it starts where that left off.
   */
  add(sequenceId: number, request: SequenceRequest, prefilled?: PrefilledKv): void {
    checkSequenceRequest(request, { vocabSize: this.config.vocabSize, maxModelLen: this.maxModelLen, eos: this.eos });
    if (this.sequences.has(sequenceId)) throw new TesseraError('TESSERA_ERR_INTERNAL', `sequence ${sequenceId} already exists`);
    const sequence = new Sequence(sequenceId, request, this.tokenizer);
    if (prefilled) Object.assign(sequence, { blocks: prefilled.blocks, blockHashes: prefilled.blockHashes, numComputed: prefilled.numComputed });
    if (sequence.stops.stopped) throw new TesseraError('TESSERA_ERR_INVALID_ARGUMENT', 'resumeIds already contain a stop string: that sequence has finished; do not resume it');
    // Built from the generated ids so far: a resumed sequence's cursor stands past its resumeIds.
    if (request.constraint) sequence.grammar = this.grammars.cursor(request.constraint, request.ignoreEos ? [] : this.config.eosTokenIds, sequence.generatedIds());
    this.sequences.set(sequenceId, sequence);
    this.scheduler.add(sequence);
  }

  /** A queued or running sequence (the KV exporter reads its block table). */
  sequence(sequenceId: number): Sequence | undefined {
    return this.sequences.get(sequenceId);
  }

  /** Takes a sequence out without an output: it goes on elsewhere (its KV was handed to a decode replica). */
  detach(sequenceId: number): void {
    const sequence = this.sequences.get(sequenceId);
    if (sequence) this.retireWhenLanded(sequence);
  }

  /** Stops a sequence at once and frees its blocks (a client went away). */
  cancel(sequenceId: number): void {
    const sequence = this.sequences.get(sequenceId);
    if (!sequence) return;
    sequence.finish = 'cancelled';
    this.retireWhenLanded(sequence);
    this.pending.push(this.output(sequence, [], undefined, ''));
  }

  /** Retires a sequence now, or, while a forward pass in flight still writes its blocks, once that lands. */
  private retireWhenLanded(sequence: Sequence): void {
    if (!this.flights.isBusy(sequence)) return this.retire(sequence);
    this.sequences.delete(sequence.id);
    this.flights.leaveLater(sequence);
  }

  /** Drops every sequence (after a failed step left their state unknown); returns their ids. */
  failAll(): number[] {
    const ids = [...this.sequences.keys()];
    for (const sequence of this.flights.reset()) this.retire(sequence);
    for (const sequence of [...this.sequences.values()]) this.retire(sequence);
    this.pending.length = 0;
    return ids;
  }

  /**
   * Launches forward passes (one, or up to the runner's pipeline groups over
   * disjoint sequences), then waits for the oldest in flight and samples it.
   */
  async step(): Promise<StepReport> {
    const outputs = this.pending.splice(0);
    this.launch();
    const landed = await this.flights.land();
    if (landed && landed.flight.epoch === this.flights.epoch) {
      const { flight, result } = landed;
      if (result.rows !== undefined) outputs.push(...this.afterForward(flight.chunks, result.rows));
      else outputs.push(...this.afterFailedForward(flight.chunks, result.error));
    }
    // Sequences cancelled or detached while their flight was in the air leave now that it landed.
    for (const sequence of this.flights.takeLeft()) this.retire(sequence);
    return { outputs, stats: this.stats(landed?.flight.chunks.length ?? 0, landed?.flight.batchTokens ?? 0) };
  }

  /** Schedules and starts forward passes while the runner takes more groups and sequences are free. */
  private launch(): void {
    const groups = Math.max(1, Math.floor(this.runner.pipelineGroups ?? 1));
    while (this.flights.size < groups) {
      // A group takes its share of the sequences, so the groups in flight stay alike in size.
      const active = this.scheduler.running.length + this.scheduler.waiting.length;
      const share = groups > 1 ? Math.max(1, Math.ceil(active / groups)) : Infinity;
      const chunks = this.scheduler.schedule({ exclude: this.flights.excluded, maxSequences: share });
      if (chunks.length === 0) return;
      const batch = this.batchOf(chunks);
      // Called now, so the runner has the batch before this step waits on anything.
      let forward: Promise<PickedRows>;
      try {
        forward = this.forward(batch, chunks);
      } catch (error) {
        forward = Promise.reject(error);
      }
      this.flights.launch(chunks, batch.ids.length, forward);
    }
  }

  /**
   * A forward that threw. KV lost (the model runner's ranks re-sharded,
   * PLAN contract 2): every running sequence goes back to recompute its
   * tokens and the prefix cache forgets its blocks; nothing fails. One bad
   * segment: its sequence fails, the others run the step again. Anything
   * else: the sequences of this batch fail; waiting and other running ones go on.
   */
  private afterFailedForward(chunks: readonly ScheduledChunk[], error: unknown): SequenceOutput[] {
    if (isTesseraError(error) && error.code === 'TESSERA_ERR_KV_LOST') {
      this.loseKv();
      return [];
    }
    const failing = error instanceof SegmentError && chunks[error.segment] ? [chunks[error.segment]] : chunks;
    return failing.filter((chunk) => this.sequences.has(chunk.sequence.id)).map((chunk) => this.fail(chunk.sequence, error));
  }

  /** The KV of every sequence is gone: recompute them all from their tokens, and share no cached block. */
  loseKv(): void {
    for (const sequence of this.flights.reset()) this.retire(sequence);
    this.scheduler.preemptAll();
    this.blocks.forgetPrefixes();
  }

  private fail(sequence: Sequence, error: unknown): SequenceOutput {
    sequence.finish = 'error';
    this.retire(sequence);
    const code = isTesseraError(error) ? error.code : 'TESSERA_ERR_INTERNAL';
    return { ...this.output(sequence, [], undefined, ''), error: { code, message: error instanceof Error ? error.message : String(error) } };
  }

  /** Tokens of all chunks laid end to end; logits only where a chunk reaches its sequence's end. */
  private batchOf(chunks: readonly ScheduledChunk[]): Batch {
    const total = chunks.reduce((sum, chunk) => sum + chunk.count, 0);
    /** [numTokens] */
    const ids = new Int32Array(total);
    const segments: BatchSegment[] = [];
    let start = 0;
    for (const { sequence, count } of chunks) {
      const from = sequence.numComputed;
      /** [count] */
      const positions = new Int32Array(count);
      for (let i = 0; i < count; i++) {
        ids[start + i] = sequence.tokens[from + i];
        positions[i] = from + i;
      }
      const reachesEnd = from + count === sequence.tokens.length;
      segments.push({ kv: this.kvOf(sequence), start, positions, logits: reachesEnd ? 'last' : 'none' });
      start += count;
    }
    return { ids, segments };
  }

  private kvOf(sequence: Sequence): SequenceKv {
    if (!sequence.kv) sequence.kv = this.blocks.kvOf(sequence.blocks);
    else sequence.kv.blockTable = Int32Array.from(sequence.blocks);
    return sequence.kv;
  }

  /**
   * The batch's logit rows (one per chunk that reaches its sequence's end):
   * picked by the runner where it can and the sequence allows (token-pick.ts),
   * else as logits.
   */
  private async forward(batch: Batch, chunks: readonly ScheduledChunk[]): Promise<PickedRows> {
    if (!this.runner.forwardPicked) return unpicked(await this.runner.forwardBatch(batch), this.config.vocabSize);
    // A runner that computes decode steps before it is asked (a burst, decode-burst.ts, or running ahead, run-ahead.ts)
    // is told to when no sequence waits to join, for the tokens each sequence has to go after this one.
    const steady = this.scheduler.waiting.length === 0;
    const burst = steady ? burstOf(this.runner) - 1 : 0;
    const picks = chunks.map(({ sequence, count }) => {
      if (sequence.numComputed + count !== sequence.tokens.length) return undefined;
      const position = sequence.tokens.length;
      const later = Math.min(sequence.request.maxTokens - sequence.generatedCount - 1, this.maxModelLen - position);
      return pickFor(sequence.request, position, burst === 0 && steady && this.runsAhead && later > 0, Math.max(0, Math.min(burst, later)));
    });
    return this.runner.forwardPicked(batch, picks);
  }

  /** rows: one per chunk that reached its end, a picked id or its [vocabSize] logits. */
  private afterForward(chunks: readonly ScheduledChunk[], rows: PickedRows): SequenceOutput[] {
    const vocab = this.config.vocabSize;
    const outputs: SequenceOutput[] = [];
    let row = 0;
    let logitRow = 0;
    for (const chunk of chunks) {
      const sequence = chunk.sequence;
      if (!this.sequences.has(sequence.id)) {
        // Cancelled or detached while in flight (retired once this landed): its row, if any, goes unread.
        if (sequence.numComputed + chunk.count === sequence.tokens.length && rows.ids[row++] < 0) logitRow++;
        continue;
      }
      this.scheduler.advance(chunk);
      if (sequence.pendingCount > 0) continue;
      const picked = rows.ids[row++];
      if (picked >= 0) {
        outputs.push(this.sample(sequence, picked));
        continue;
      }
      /** [vocabSize] */
      const rowLogits = rows.logits.subarray(logitRow * vocab, (logitRow + 1) * vocab);
      logitRow++;
      outputs.push(this.sample(sequence, rowLogits));
    }
    return outputs;
  }

  /** row: the step's logits for this sequence, or the id the runner already picked from them. */
  private sample(sequence: Sequence, row: Float32Array | number): SequenceOutput {
    const { request } = sequence;
    const position = sequence.tokens.length;
    const history = { promptIds: request.promptIds, generatedIds: sequence.generatedIds() };
    const logits = typeof row === 'number' ? undefined : row;
    let id: number;
    try {
      id = typeof row === 'number' ? row : sampleGuided(row, request.sampling, history, position, sequence.grammar, request.logitBias);
      if (!this.eos.has(id) || request.ignoreEos) sequence.grammar?.advance(id);
    } catch (error) {
      // A constraint that cannot go on fails its own sequence, not the batch.
      return this.fail(sequence, error);
    }
    // A picked row never asks for logprobs (pickFor leaves those rows as logits).
    const logprob = request.logprobs === undefined || logits === undefined ? undefined : tokenLogprob(logits, id, request.logprobs);
    if (!request.ignoreEos && this.eos.has(id)) return this.end(sequence, 'stop', [], '');
    sequence.tokens.push(id);
    const text = sequence.stops.push(sequence.decoder.push(id));
    const logprobs = logprob ? [logprob] : undefined;
    if (sequence.stops.stopped || sequence.grammar?.finished) return this.end(sequence, 'stop', [id], text, logprobs);
    if (sequence.generatedCount >= request.maxTokens) return this.end(sequence, 'length', [id], text, logprobs);
    return this.output(sequence, [id], logprobs, text);
  }

  private end(sequence: Sequence, finish: 'stop' | 'length', ids: number[], text: string, logprobs?: TokenLogprob[]): SequenceOutput {
    const rest = finish === 'length' || !sequence.stops.stopped ? sequence.stops.push(sequence.decoder.flush()) + sequence.stops.flush() : '';
    sequence.finish = finish;
    this.retire(sequence);
    return this.output(sequence, ids, logprobs, text + rest);
  }

  private retire(sequence: Sequence): void {
    this.scheduler.finish(sequence);
    this.sequences.delete(sequence.id);
  }

  private output(sequence: Sequence, ids: number[], logprobs: TokenLogprob[] | undefined, text: string): SequenceOutput {
    return {
      sequenceId: sequence.id,
      ids,
      logprobs,
      text,
      finish: sequence.finish,
      promptTokens: sequence.promptLength,
      cachedPromptTokens: Math.max(0, sequence.cachedPromptTokens),
    };
  }

  private stats(batchSequences: number, batchTokens: number): StepStats {
    return {
      batchSequences,
      batchTokens,
      waiting: this.scheduler.waiting.length,
      running: this.scheduler.running.length,
      blocksUsed: this.blocks.usedCount,
      blocksFree: this.blocks.freeCount,
      prefixQueriedTokens: this.blocks.queriedTokens,
      prefixHitTokens: this.blocks.hitTokens,
      preemptions: this.scheduler.preemptions,
      expertTokens: this.expertTokens(),
    };
  }

  private expertTokens(): number[][] | undefined {
    const tokens = this.runner.expertLoad?.snapshot().tokens;
    return tokens?.some((row) => row.length > 0) ? tokens : undefined;
  }
}

/** Decode steps per forward the runner computes (1 unless it makes bursts). */
function burstOf(runner: ModelRunner): number {
  return Math.max(1, Math.floor(runner.decodeBurst ?? 1));
}

function tokenLogprob(logits: Float32Array, id: number, k: number): TokenLogprob {
  // topLogprobs(logits, 1) gives logits[i] - logSumExp in float64; the chosen token uses the same arithmetic.
  const best = topLogprobs(logits, 1)[0];
  const logTotal = logits[best.id] - best.logprob;
  return { logprob: logits[id] - logTotal, top: k > 0 ? topLogprobs(logits, k) : [] };
}
