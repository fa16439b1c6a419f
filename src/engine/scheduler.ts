/**
 * Decides what each step computes. Running sequences go first, oldest first:
 * one token for a decoding sequence, a chunk of its prompt for one still in
 * prefill, all within a per-step token budget, so a long prompt is cut into
 * chunks and never stalls the streams already running. Waiting sequences are
 * admitted while budget, sequence slots and KV blocks last, taking cached
 * prefix blocks first. When blocks run out, the newest running sequence is
 * preempted: its blocks are released and it goes back to the front of the
 * queue, to be recomputed later (its full blocks usually still sit in the
 * prefix cache). Nothing is dropped.
 */
import { blockHash, ROOT_HASH, type BlockManager } from './block-manager.js';
import type { Sequence } from './sequence.js';

export interface SchedulerLimits {
  /** Sequences running at once. */
  maxNumSeqs: number;
  /** Tokens per step, decode and prefill together. */
  maxBatchTokens: number;
  /**
   * A sequence's decode step also gets the blocks of this many tokens after
   * the one it writes, when they are free once every chunk and admission has
   * its own (never by preempting): a runner that computes the next decode
   * step ahead (src/cluster/run-ahead.ts: 1), or a burst of steps
   * (src/cluster/decode-burst.ts: the burst's later steps), needs those
   * positions in the block table. Default 0.
   */
  blockAhead?: number;
  /**
   * Prompts go in order of the tokens they have left to prefill, waiting
   * ones included (shortest first; decode rows, one token each, first of
   * all), and a step that finishes a prompt takes no partial chunk of a
   * longer one. For a prefill replica, whose steps are all prompts: a short
   * prompt's first token waits for the step in progress and a step of its
   * own, not behind every chunk of a long prompt that came first. A long
   * prompt waits while shorter ones keep coming. Default false: sequences in
   * the order they came.
   */
  shortestPromptFirst?: boolean;
}

export interface ScheduleOptions {
  exclude?: { has(sequence: Sequence): boolean };
  maxSequences?: number;
}

/** `count` tokens of `sequence`, from position `sequence.numComputed`. */
export interface ScheduledChunk {
  sequence: Sequence;
  count: number;
}

export class Scheduler {
  readonly waiting: Sequence[] = [];
  readonly running: Sequence[] = [];
  preemptions = 0;

  constructor(
    private readonly blocks: BlockManager,
    private readonly limits: SchedulerLimits,
  ) {}

  get hasWork(): boolean {
    return this.waiting.length > 0 || this.running.length > 0;
  }

  add(sequence: Sequence): void {
    this.waiting.push(sequence);
  }

  /** Takes a sequence out wherever it is and releases its blocks. */
  remove(sequence: Sequence): void {
    const waitingAt = this.waiting.indexOf(sequence);
    if (waitingAt >= 0) this.waiting.splice(waitingAt, 1);
    const runningAt = this.running.indexOf(sequence);
    if (runningAt >= 0) this.running.splice(runningAt, 1);
    this.freeBlocks(sequence);
  }

  /**
   * The next step's chunks. `exclude`: running sequences that get nothing now
   * (their forward pass is still in flight) and are never preempted;
   * `maxSequences`: at most this many sequences in the step.
   */
  schedule(options: ScheduleOptions = {}): ScheduledChunk[] {
    if (this.limits.shortestPromptFirst) return this.withBlockAhead(this.scheduleShortestFirst(options));
    const chunks: ScheduledChunk[] = [];
    const exclude = options.exclude;
    let budget = this.limits.maxBatchTokens;
    let left = options.maxSequences ?? Infinity;
    const preemptionsBefore = this.preemptions;
    for (let i = 0; i < this.running.length && budget > 0 && left > 0; i++) {
      const sequence = this.running[i];
      if (exclude?.has(sequence)) continue;
      const count = Math.min(sequence.pendingCount, budget);
      if (!this.reserveRunning(sequence, count, exclude)) break; // it preempted itself: nothing after it is left
      chunks.push({ sequence, count });
      budget -= count;
      left--;
    }
    // Admitting while preempting would only thrash: the freed blocks go to the running sequences.
    if (this.preemptions === preemptionsBefore && left > 0) budget = this.admit(chunks, budget, left);
    return this.withBlockAhead(chunks);
  }

  /** Last, from what every chunk's own tokens and the admissions left: a look-ahead block never costs a sequence its place. */
  private withBlockAhead(chunks: ScheduledChunk[]): ScheduledChunk[] {
    // (reserve allocates nothing when the free blocks do not cover it.)
    const ahead = this.limits.blockAhead ?? 0;
    if (ahead > 0) for (const { sequence, count } of chunks) if (count === 1 && sequence.pendingCount === 1) this.reserve(sequence, sequence.numComputed + 1 + ahead);
    return chunks;
  }

  /**
   * The step under shortestPromptFirst: running and waiting sequences by
   * tokens left (running first on a tie, then in the order they came), each
   * as much as the budget takes, until a chunk would leave a prompt
   * unfinished in a step that finishes one.
   */
  private scheduleShortestFirst({ exclude, maxSequences }: ScheduleOptions): ScheduledChunk[] {
    const chunks: ScheduledChunk[] = [];
    let budget = this.limits.maxBatchTokens;
    let left = maxSequences ?? Infinity;
    let finishesPrompt = false;
    const candidates = [...this.running.filter((sequence) => !exclude?.has(sequence)), ...this.waiting];
    // Array.prototype.sort is stable: ties keep running before waiting, each in its own order.
    candidates.sort((a, b) => a.pendingCount - b.pendingCount);
    const prefilling = this.prefillingFirstBlocks();
    const preemptionsBefore = this.preemptions;
    for (const sequence of candidates) {
      if (budget <= 0 || left <= 0) break;
      const waiting = this.waiting.includes(sequence);
      // Admitting while preempting would only thrash (a preempted sequence is waiting again now): the freed blocks go to the running ones.
      if (waiting && (this.preemptions !== preemptionsBefore || !this.admitsNow(sequence, prefilling))) continue;
      // A waiting sequence takes its cached prefix first: what is left to compute may shrink.
      if (waiting && sequence.blocks.length === 0) this.takeCachedPrefix(sequence);
      const count = Math.min(sequence.pendingCount, budget);
      if (finishesPrompt && count < sequence.pendingCount) {
        if (waiting) this.freeBlocks(sequence);
        break;
      }
      if (!(waiting ? this.admitOne(sequence, count, prefilling) : this.reserveRunning(sequence, count, exclude))) continue;
      chunks.push({ sequence, count });
      budget -= count;
      left--;
      if (count === sequence.pendingCount && count > 1) finishesPrompt = true;
    }
    return chunks;
  }

  /** Whether a waiting sequence may join now: a sequence slot is free and no running one is prefilling its first block. */
  private admitsNow(sequence: Sequence, prefilling: Set<string | undefined>): boolean {
    if (this.running.length >= this.limits.maxNumSeqs) return false;
    const first = this.firstBlockHash(sequence);
    return !(first !== undefined && prefilling.has(first) && sequence.blocks.length === 0);
  }

  /** A waiting sequence (its cached prefix taken) into the running set with blocks for `count` more tokens; false when the blocks are not there. */
  private admitOne(sequence: Sequence, count: number, prefilling: Set<string | undefined>): boolean {
    if (!this.reserve(sequence, sequence.numComputed + count)) {
      this.freeBlocks(sequence);
      return false;
    }
    this.waiting.splice(this.waiting.indexOf(sequence), 1);
    this.running.push(sequence);
    if (sequence.numComputed < sequence.promptLength) prefilling.add(this.firstBlockHash(sequence));
    return true;
  }

  /** Blocks for `count` more tokens of a running sequence, preempting the newest others when none are free; false when it preempted itself. */
  private reserveRunning(sequence: Sequence, count: number, exclude: ScheduleOptions['exclude']): boolean {
    while (!this.reserve(sequence, sequence.numComputed + count)) {
      const victim = this.newestRunning(exclude);
      this.preempt(victim);
      if (victim === sequence) return false;
    }
    return true;
  }

  /** The newest running sequence not excluded (the one scheduling asks for is never excluded, so there is one). */
  private newestRunning(exclude: ScheduleOptions['exclude']): Sequence {
    for (let i = this.running.length - 1; i > 0; i--) {
      if (!exclude?.has(this.running[i])) return this.running[i];
    }
    return this.running[0];
  }

  /**
   * Admits waiting sequences in order while budget, slots and blocks last. A
   * sequence whose first block is being prefilled right now by a running one
   * waits a little, so it will find the shared prefix in the cache instead of
   * computing it again (n choices of one prompt; requests sharing a system prompt).
   */
  private admit(chunks: ScheduledChunk[], budget: number, maxSequences: number): number {
    let left = maxSequences;
    const prefilling = this.prefillingFirstBlocks();
    for (let index = 0; index < this.waiting.length && budget > 0 && left > 0 && this.running.length < this.limits.maxNumSeqs; ) {
      const sequence = this.waiting[index];
      if (!this.admitsNow(sequence, prefilling)) {
        index++;
        continue;
      }
      if (sequence.blocks.length === 0) this.takeCachedPrefix(sequence);
      const count = Math.min(sequence.pendingCount, budget);
      if (!this.admitOne(sequence, count, prefilling)) break;
      chunks.push({ sequence, count });
      budget -= count;
      left--;
    }
    return budget;
  }

  /** First-block hashes of the running sequences still prefilling (a waiting sequence that shares one waits for it, admitsNow). */
  private prefillingFirstBlocks(): Set<string | undefined> {
    return new Set(this.running.filter((sequence) => sequence.numComputed < sequence.promptLength).map((sequence) => this.firstBlockHash(sequence)));
  }

  /** Hash of the first full block of a prompt that has more than one block's worth of tokens to share. */
  private firstBlockHash(sequence: Sequence): string | undefined {
    const size = this.blocks.blockSize;
    if (sequence.promptLength <= size || !this.blocks.prefixCaching) return undefined;
    sequence.firstBlockHash ??= blockHash(ROOT_HASH, sequence.tokens.slice(0, size));
    return sequence.firstBlockHash;
  }

  /** After a step computed `chunk`: advance it and name its newly full blocks. */
  advance(chunk: ScheduledChunk): void {
    const sequence = chunk.sequence;
    sequence.numComputed += chunk.count;
    const size = this.blocks.blockSize;
    const fullBlocks = Math.floor(sequence.numComputed / size);
    for (let index = sequence.blockHashes.length; index < fullBlocks; index++) {
      const parent = index === 0 ? ROOT_HASH : sequence.blockHashes[index - 1];
      const hash = blockHash(parent, sequence.tokens.slice(index * size, (index + 1) * size));
      sequence.blockHashes.push(hash);
      this.blocks.register(sequence.blocks[index], hash);
    }
  }

  /** A sequence that finished: out of the running set, blocks released. */
  finish(sequence: Sequence): void {
    this.remove(sequence);
  }

  /**
   * Cached blocks for the start of a sequence's tokens. The last token is
   * always recomputed: its logits are what the next sample needs.
   */
  private takeCachedPrefix(sequence: Sequence): void {
    const match = this.blocks.matchPrefix(sequence.tokens, sequence.tokens.length - 1);
    for (const block of match.blocks) this.blocks.acquire(block);
    sequence.blocks = match.blocks;
    sequence.blockHashes = match.hashes;
    sequence.numComputed = match.blocks.length * this.blocks.blockSize;
    if (sequence.cachedPromptTokens < 0) {
      sequence.cachedPromptTokens = Math.min(sequence.numComputed, sequence.promptLength);
      this.blocks.recordLookup(sequence.promptLength, sequence.cachedPromptTokens);
    }
  }

  /** Makes sure the sequence holds blocks for `tokens` tokens. */
  private reserve(sequence: Sequence, tokens: number): boolean {
    const needed = Math.ceil(tokens / this.blocks.blockSize) - sequence.blocks.length;
    if (needed <= 0) return true;
    if (needed > this.blocks.freeCount) return false;
    for (let i = 0; i < needed; i++) sequence.blocks.push(this.blocks.allocate() as number);
    return true;
  }

  /** Every running sequence back to the front of the queue, in running order, to be recomputed (its KV is gone). */
  preemptAll(): void {
    for (const sequence of [...this.running].reverse()) this.preempt(sequence);
  }

  private preempt(sequence: Sequence): void {
    const at = this.running.indexOf(sequence);
    if (at >= 0) this.running.splice(at, 1);
    this.freeBlocks(sequence);
    sequence.preemptions++;
    this.preemptions++;
    this.waiting.unshift(sequence);
  }

  private freeBlocks(sequence: Sequence): void {
    this.blocks.release(sequence.blocks);
    sequence.blocks = [];
    sequence.blockHashes = [];
    sequence.numComputed = 0;
  }
}
