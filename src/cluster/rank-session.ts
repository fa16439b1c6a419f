/**
 * A worker's life across plan generations. For each generation the
 * coordinator sends `prepare` (open a mesh listener), `plan` (connect to the
 * peers, re-shard the weights) and then steps; a rank outside the plan gets
 * `release` and waits as a spare. A generation ends when a newer one is
 * prepared, or when it breaks: a peer went away (its socket closed, or the
 * heartbeat thread brought an abort because the coordinator declared a rank
 * lost), or the rank's compute failed. A broken generation's transport is
 * closed, so nothing waits on it any more, and its remaining steps are
 * skipped; the worker itself goes on to the next plan. A step refused before
 * anything ran (a bad block table or id) fails only that step.
 *
 * Each generation gets links of its own (rank-links.ts): a shared-memory
 * segment or socket listeners made at `prepare`, connected at `plan`, whose
 * native meshes carry the generation as their abort tag, so the heartbeat
 * thread's abort of a lost plan (abortCollectives(generation)) ends that
 * plan's native waits and never the next one's. Step times (compute, wait,
 * transfer, event loop) are summed over every generation and sent at shutdown.
 */
import { isTesseraError, SegmentError, TesseraError, type ErrorCode } from '../core/errors.js';
import { epochMicros, TRACE_THREADS, type TraceEvent } from '../core/trace-event.js';
import type { ExpertLoad } from '../model/moe-expert-load.js';
import { RankEndpoint, closeLinks, type RankLinks } from '../parallel/rank-links.js';
import { StepTotals, type StepBreakdown, type StepClock } from '../parallel/step-clock.js';
import { TimedTransport } from '../parallel/timed-transport.js';
import { floatBytes } from '../parallel/transport.js';
import type { ControlMessage, RankStepSums } from './control-message.js';
import { HeldShards } from './held-shards.js';
import { checkPlanShape } from './plan-layout.js';
import { loadRank, RankFiles, type PlanMessage } from './rank-loader.js';
import type { RankRunner, StepRequest } from './rank-runner.js';
import type { PickedRows } from '../engine/token-pick.js';
import { canRunAhead, matchAhead, nextRequests, rowsInOrder, type AheadStep } from './run-ahead.js';
import { burstRequests, burstSteps } from './decode-burst.js';

type Send = (message: ControlMessage, body?: Uint8Array) => Promise<void>;
type StepMessage = Extract<ControlMessage, { type: 'step' }>;

/** How long connecting to a generation's peers may take before the rank gives up on it. */
const CONNECT_DEADLINE_MS = 60_000;
/** How often a tracing rank sends its spans to the coordinator. */
const SPAN_BATCH_MS = 1000;

export class RankSession {
  /** The generation being set up or run (0: none yet). */
  private generation = 0;
  private rank = 0;
  private size = 1;
  /** The generation's endpoint until its plan connects it. */
  private endpoint: RankEndpoint | undefined;
  private links: RankLinks | undefined;
  private transport: TimedTransport | undefined;
  private runner: RankRunner | undefined;
  private clock: StepClock | undefined;
  private expertLoad: ExpertLoad | undefined;
  /** The current generation cannot run steps any more. */
  private broken = false;
  /** Rejects a pending connect when the generation is aborted. */
  private abortConnect: ((error: Error) => void) | undefined;
  private readonly held = new HeldShards();
  private readonly files = new RankFiles();
  /**
   * Spans when a plan asked for tracing: sent to the coordinator in batches
   * a second apart after steps, and the rest at shutdown, so a rank that
   * dies has given up all but its last second (its memory goes with it).
   */
  private spans: TraceEvent[] | undefined;
  private spansSentAt = 0;
  /** Step times of every generation: decode steps (one token per sequence) apart from the rest. */
  private readonly decode = new StepTotals();
  private readonly other = new StepTotals();
  /** The transport kind of the last plan this rank ran, for the shutdown stats ('' before any). */
  private transportKind = '';
  /** The step computed ahead of being asked (run-ahead.ts), if any. */
  private ahead: AheadStep | undefined;
  /** Steps answered from a step computed ahead, and steps computed ahead that were not asked for. */
  private readonly aheadCounts = { used: 0, missed: 0 };

  constructor(
    private readonly send: Send,
    /** This machine's address as the coordinator sees it, for TCP mesh listeners. */
    private readonly host: string,
    private readonly threads: number | undefined,
    private readonly log: (line: string) => void,
  ) {}

  /** Runs one control message; false once the worker should stop. */
  async handle(message: ControlMessage, body: Uint8Array = new Uint8Array(0)): Promise<boolean> {
    if (message.type === 'prepare') await this.prepare(message);
    else if (message.type === 'plan') await this.plan(message);
    else if (message.type === 'step') await this.step(message);
    else if (message.type === 'kv-read') await this.readKv(message);
    else if (message.type === 'kv-write') await this.writeKv(message, body);
    else if (message.type === 'release') await this.release();
    else if (message.type === 'clock') await this.send({ type: 'clock-reply', sentAt: message.sentAt, at: epochMicros() });
    else if (message.type === 'shutdown') {
      if (this.transportKind) await this.send({ type: 'stats', rank: this.rank, transport: this.transportKind, decode: sumsOf(this.decode), other: sumsOf(this.other), ahead: { ...this.aheadCounts } });
      if (this.spans) await this.send({ type: 'trace', events: this.spans });
      await this.close();
      return false;
    } else throw unexpected(message);
    return true;
  }

  /** From the heartbeat thread: the coordinator lost a rank of `generation`; stop waiting on its peers. */
  abort(generation: number): void {
    if (generation !== this.generation || this.broken) return;
    this.breakGeneration(new TesseraError('TESSERA_ERR_RANK_LOST', `generation ${generation} was aborted by the coordinator (a rank was lost)`));
  }

  /** Abandons whatever generation runs (the coordinator is gone). */
  abortAll(): void {
    if (!this.broken) this.breakGeneration(new TesseraError('TESSERA_ERR_RANK_LOST', 'the coordinator went away'));
  }

  async close(): Promise<void> {
    await this.teardown();
    this.held.clear();
    this.files.close();
  }

  private async prepare(message: Extract<ControlMessage, { type: 'prepare' }>): Promise<void> {
    await this.teardown();
    if (message.rank >= message.size) throw new TesseraError('TESSERA_ERR_LAYOUT_MISMATCH', `the coordinator prepared rank ${message.rank} of a mesh of ${message.size}`);
    this.generation = message.generation;
    this.rank = message.rank;
    this.size = message.size;
    this.broken = false;
    const host = message.transport === 'tcp' ? this.host : undefined;
    this.endpoint = await RankEndpoint.open(message.transport, message.rank, message.size, host, message.generation);
    await this.send({ type: 'listening', generation: message.generation, address: this.endpoint.address });
  }

  private async plan(plan: PlanMessage): Promise<void> {
    const endpoint = this.endpoint;
    if (plan.generation !== this.generation || this.broken || !endpoint) return;
    this.endpoint = undefined;
    const started = performance.now();
    try {
      // The handshake's layout half, before any peer is dialed (the model half is in loadRank).
      checkPlanShape(plan, this.rank, this.size);
      if (plan.trace) this.spans ??= [];
      this.links = await this.connect(plan, endpoint);
      this.transport = new TimedTransport(this.links.transport, this.spans);
      this.transportKind = this.links.transport.kind;
      // The old stage's weights go before the new ones load, so the two are not held at once.
      this.runner = undefined;
      const loaded = loadRank(plan, this.rank, this.links, this.transport, this.held, this.files, this.threads);
      [this.runner, this.clock, this.expertLoad] = [loaded.runner, loaded.clock, loaded.expertLoad];
      this.log(`tessera worker: ${loaded.description}; read ${loaded.bytesRead} bytes (${loaded.newBytes} new), holds ${loaded.bytesHeld}`);
      const { bytesRead, newBytes, bytesHeld } = loaded;
      await this.send({ type: 'ready', generation: plan.generation, bytesRead, newBytes, bytesHeld, loadMs: performance.now() - started });
    } catch (error) {
      // A plan refused before it connected (its shape) still holds the endpoint's listener and data socket.
      endpoint.close();
      await this.fail(plan.generation, -1, error);
    }
  }

  /** The mesh connections of a plan; an abort or the deadline ends the wait (links that connect after that are closed). */
  private async connect(plan: PlanMessage, endpoint: RankEndpoint): Promise<RankLinks> {
    let timer: NodeJS.Timeout | undefined;
    let gaveUp = false;
    const stopped = new Promise<never>((_, reject) => {
      this.abortConnect = reject;
      timer = setTimeout(() => reject(new TesseraError('TESSERA_ERR_RANK_LOST', `the peers of generation ${plan.generation} did not connect within ${CONNECT_DEADLINE_MS / 1000} s`)), CONNECT_DEADLINE_MS);
    });
    const connecting = endpoint.connect(plan.addresses, plan.meshToken);
    connecting.then((links) => gaveUp && void closeLinks(links), () => undefined);
    try {
      return await Promise.race([connecting, stopped]);
    } catch (error) {
      gaveUp = true;
      throw error;
    } finally {
      clearTimeout(timer);
      this.abortConnect = undefined;
    }
  }

  private async step(message: StepMessage): Promise<void> {
    const { runner, clock } = this;
    // Steps of an older or broken generation: the coordinator has already failed them.
    if (message.generation !== this.generation || this.broken || !runner || !clock) return;
    const requests = stepRequests(message);
    try {
      runner.validate(message.pool, requests);
    } catch (error) {
      const segment = error instanceof SegmentError ? error.segment : -1;
      this.log(`tessera worker: refused step ${message.id} of generation ${message.generation}: ${codeOf(error).code}: ${codeOf(error).message}`);
      await this.send({ type: 'step-refused', generation: message.generation, id: message.id, segment, ...codeOf(error) });
      return;
    }
    const startedEpoch = epochMicros();
    const oneStage = runner.stage.isFirst && runner.stage.isLast;
    // A one-stage mesh computes the steps of a burst in this one (decode-burst.ts), or may compute the next step
    // now, before it is asked (run-ahead.ts): either way every rank picks.
    const burst = oneStage ? burstSteps(requests, message.pool) : 0;
    const goesAhead = burst === 0 && oneStage && canRunAhead(requests, message.pool);
    let ran: { rows: PickedRows | undefined; times: StepBreakdown } | undefined = this.takeAhead(message, requests);
    const tokens = requests.reduce((sum, request) => sum + request.ids.length, 0);
    // A step answered from one computed ahead has its span already (the computation's, in runAhead).
    if (!ran) {
      ran = await this.computeStep(message, startedEpoch, requests, goesAhead || burst > 0);
      if (!ran) return;
    }
    const rows = ran.rows;
    const times = { ...ran.times };
    let replied: Promise<void> | undefined;
    (tokens === requests.length ? this.decode : this.other).add(times, tokens);
    const following: Int32Array[] = [];
    for (let step = 1; rows && step <= burst; step++) {
      const later = await this.computeStep(message, epochMicros(), burstRequests(requests, step, following[step - 2] ?? rows.ids), true, step);
      if (!later) return;
      // Every rank of a one-stage mesh picks (everywhere): no rows would be a broken burst, which the driver refuses as such.
      if (!later.rows) break;
      following.push(later.rows.ids);
      this.decode.add(later.times, requests.length);
      addTimes(times, later.times);
    }
    if (rows && runner.reports) {
      const { computeMs, waitMs, transferMs, eventLoopMs } = times;
      // Only the unpicked rows travel as logits; ids go when any row was picked.
      const ids = rows.ids.some((id) => id >= 0) ? { ids: Array.from(rows.ids) } : {};
      const later = following.length > 0 ? { burst: following.flatMap((step) => Array.from(step)) } : {};
      replied = this.send({ type: 'logits', generation: message.generation, id: message.id, computeMs, waitMs, transferMs, eventLoopMs, ...ids, ...later }, floatBytes(rows.logits));
      // Awaited below; handled now, so a failed send during the next step is not an unhandled rejection.
      replied.catch(() => undefined);
    }
    // The reply's bytes are on the socket now (the write is attempted at once); its peer computes the next step
    // meanwhile, so this rank starts too rather than awaiting the write's completion first.
    if (goesAhead && rows) await this.runAhead(message, requests, rows);
    await replied;
    await this.sendSpans();
  }

  /**
   * Computes one step of `message` (traced as a step; `burstStep`: the later step of a burst it is); undefined
   * when it failed, which fails the message's step and generation.
   */
  private async computeStep(message: StepMessage, startedEpoch: number, requests: readonly StepRequest[], everywhere: boolean, burstStep = 0): Promise<{ rows: PickedRows | undefined; times: StepBreakdown } | undefined> {
    const { runner, clock } = this;
    if (!runner || !clock || this.broken || message.generation !== this.generation) return undefined;
    clock.begin();
    let ran;
    try {
      ran = { rows: await runner.stepPicked(message.pool, requests, everywhere), times: clock.end() };
    } catch (error) {
      await this.fail(message.generation, message.id, error);
      return undefined;
    }
    this.recordStep(message, startedEpoch, requests.reduce((sum, request) => sum + request.ids.length, 0), ran.times, false, burstStep);
    return ran;
  }

  /** A KV export's rows, after the steps before it: this rank's layers and heads, or a refusal of a run outside its pool. */
  private async readKv(message: Extract<ControlMessage, { type: 'kv-read' }>): Promise<void> {
    const runner = this.runner;
    if (message.generation !== this.generation || this.broken || !runner) return;
    let rows;
    try {
      rows = runner.readKv(message.pool, message.runs);
    } catch (error) {
      await this.send({ type: 'kv-refused', generation: message.generation, id: message.id, ...codeOf(error) });
      return;
    }
    await this.send({ type: 'kv-rows', generation: message.generation, id: message.id, layers: rows.layers, heads: rows.heads, dtype: rows.dtype }, rows.body);
  }

  /**
   * Rows another replica computed, into this rank's pool before the steps after them. The driver made the
   * message from its own reservation, so one this rank cannot write is a broken driver: the generation ends.
   */
  private async writeKv(message: Extract<ControlMessage, { type: 'kv-write' }>, body: Uint8Array): Promise<void> {
    const runner = this.runner;
    if (message.generation !== this.generation || this.broken || !runner) return;
    try {
      runner.writeKv(message, body);
    } catch (error) {
      await this.fail(message.generation, -1, error);
    }
  }

  /** The rows of `requests` if the step computed ahead holds them all (it is used once either way). */
  private takeAhead(message: StepMessage, requests: readonly StepRequest[]): { rows: PickedRows; times: StepBreakdown } | undefined {
    const ahead = this.ahead;
    this.ahead = undefined;
    if (!ahead) return undefined;
    const order = matchAhead(ahead, message.generation, message.pool, requests);
    if (!order) {
      this.aheadCounts.missed++;
      return undefined;
    }
    this.aheadCounts.used++;
    return { rows: rowsInOrder(ahead.rows, order), times: ahead.times };
  }

  /** Computes the step after `requests` with the ids this rank picked for them, for the driver to ask next. */
  private async runAhead(message: StepMessage, requests: readonly StepRequest[], rows: PickedRows): Promise<void> {
    const { runner, clock } = this;
    if (!runner || !clock || this.broken || message.generation !== this.generation) return;
    const next = nextRequests(requests, rows.ids);
    const startedEpoch = epochMicros();
    clock.begin();
    try {
      const picked = await runner.stepPicked(message.pool, next, true);
      const times = clock.end();
      // Traced as a step when it runs, so its ops nest in it (args.ahead: computed before it was asked).
      this.recordStep(message, startedEpoch, next.length, times, true);
      if (picked) this.ahead = { generation: message.generation, layout: message.pool, requests: next, rows: picked, times };
    } catch (error) {
      // Nobody asked for this step: the generation breaks (its peers are told) with no step to fail.
      await this.fail(message.generation, -1, error);
    }
  }

  /** The spans gathered since the last batch, once a second has passed (after the step's reply, so it waits for nothing). */
  private async sendSpans(): Promise<void> {
    const spans = this.spans;
    if (!spans || spans.length === 0 || performance.now() - this.spansSentAt < SPAN_BATCH_MS) return;
    this.spansSentAt = performance.now();
    // splice: the array is shared by the transport and the traced backend, which keep pushing into it.
    await this.send({ type: 'trace', events: spans.splice(0) });
  }

  /** A step's span: `ahead`, computed before it was asked (run-ahead.ts); `burstStep`, the later step of a burst it is (decode-burst.ts). */
  private recordStep(message: StepMessage, startedEpoch: number, tokens: number, times: StepBreakdown, ahead = false, burstStep = 0): void {
    const spans = this.transport?.spans;
    if (!spans) return;
    const args = { tokens, sequences: message.segments.length, generation: message.generation, ...rounded(times), ...(ahead ? { ahead: 1 } : {}), ...(burstStep > 0 ? { burst: burstStep } : {}) };
    spans.push({ name: 'step', ph: 'X', ts: startedEpoch, dur: epochMicros() - startedEpoch, pid: this.rank, tid: TRACE_THREADS.compute, args });
    if (this.expertLoad) spans.push(...expertCounters(this.expertLoad, this.rank, startedEpoch));
  }

  /** This generation can run no more steps: say why, and close its transport so no peer waits on this rank. */
  private async fail(generation: number, id: number, error: unknown): Promise<void> {
    if (generation !== this.generation) return;
    const wasBroken = this.broken;
    this.breakGeneration(error);
    if (!wasBroken || id >= 0) await this.send({ type: 'rank-failed', generation, id, ...codeOf(error) });
  }

  private breakGeneration(error: unknown): void {
    this.broken = true;
    this.ahead = undefined;
    this.abortConnect?.(error instanceof Error ? error : new Error(String(error)));
    this.endpoint?.close();
    this.endpoint = undefined;
    if (this.links) void closeLinks(this.links);
  }

  private async release(): Promise<void> {
    await this.teardown();
    this.held.clear();
    this.log('tessera worker: not in the new plan; waiting as a spare');
  }

  private async teardown(): Promise<void> {
    this.endpoint?.close();
    this.endpoint = undefined;
    const links = this.links;
    this.links = undefined;
    this.transport = undefined;
    this.runner = undefined;
    this.clock = undefined;
    this.expertLoad = undefined;
    if (links) await closeLinks(links);
  }
}

function stepRequests(message: StepMessage): StepRequest[] {
  return message.segments.map((segment) => ({
    blockTable: Int32Array.from(segment.blockTable),
    rows: segment.rows,
    ids: Int32Array.from(segment.ids),
    positions: Int32Array.from(segment.positions),
    pick: segment.pick,
  }));
}

function sumsOf(totals: StepTotals): RankStepSums {
  return { steps: totals.steps, tokens: totals.tokens, ...totals.sums };
}

/** Breakdown milliseconds to 3 decimals, for trace arguments. */
function rounded(times: StepBreakdown): Record<string, number> {
  return Object.fromEntries(Object.entries(times).map(([key, value]) => [key, Math.round(value * 1000) / 1000]));
}

function codeOf(error: unknown): { code: ErrorCode; message: string } {
  if (isTesseraError(error)) return { code: error.code, message: error.message };
  return { code: 'TESSERA_ERR_INTERNAL', message: error instanceof Error ? error.message : String(error) };
}

function unexpected(message: ControlMessage): TesseraError {
  if (message.type === 'error') return new TesseraError(message.code, message.message);
  return new TesseraError('TESSERA_ERR_INTERNAL', `the coordinator sent an unexpected ${message.type} message; are the coordinator and worker the same version?`);
}

/** Chrome trace counters: tokens routed so far to each of this rank's experts, one counter track per MoE layer. */
function expertCounters(load: ExpertLoad, rank: number, ts: number): TraceEvent[] {
  const events: TraceEvent[] = [];
  load.snapshot().tokens.forEach((row, layer) => {
    if (row.length === 0) return;
    const args: Record<string, number> = {};
    row.forEach((count, expert) => {
      if (count > 0) args[`expert ${expert}`] = count;
    });
    events.push({ name: `layer ${layer} expert tokens`, ph: 'C', ts, pid: rank, args });
  });
  return events;
}

/** Adds `more` into `into` (a burst's reply carries the time of all its steps). */
function addTimes(into: StepBreakdown, more: StepBreakdown): void {
  into.stepMs += more.stepMs;
  into.computeMs += more.computeMs;
  into.waitMs += more.waitMs;
  into.transferMs += more.transferMs;
  into.eventLoopMs += more.eventLoopMs;
}
