/**
 * The driver's traffic with the ranks of the plan that serves: steps (to
 * every rank, in the order sent, so pipeline stages overlap micro-batches;
 * the logits or picked ids come back from the last stage's tp rank 0), KV
 * reads (every rank answers with its layers and heads) and KV writes (to
 * the ranks of the stage holding the layer), and the answers as they come
 * back on the control links. A generation that stops serving fails what
 * waits on it (failGeneration); the coordinator decides when.
 */
import { SegmentError, TesseraError } from '../core/errors.js';
import type { PickedRows } from '../engine/token-pick.js';
import { asFloats } from '../parallel/transport.js';
import type { NodeId, Plan } from './cluster-state.js';
import { encodeControl, stepMessage, type ControlMessage, type Envelope, type KvReadRun } from './control-message.js';
import { KvReadPipe, type KvRankRows } from './kv-read-pipe.js';
import type { MeshTrace } from './mesh-trace.js';
import type { NodeLink } from './node-link.js';
import type { KvLayout, StepRequest } from './rank-runner.js';
import type { ReshardLog } from './reshard-log.js';
import { checkBody, StepPipe, stepRows, type StepTimings } from './step-pipe.js';
import { burstSteps } from './decode-burst.js';

/** What the traffic needs of the coordinator: the plan that serves, and the links to its nodes. */
export interface TrafficRoute {
  /** The plan of `generation` while it serves; undefined while the mesh re-shards (or `generation` is an old one). */
  serving(generation: number): Plan | undefined;
  link(id: NodeId): NodeLink | undefined;
}

export class MeshTraffic {
  /** Timings of the last step, from the reporting rank. */
  lastTimings: StepTimings = { computeMs: 0, waitMs: 0 };
  /** Sums over every step so far, from the reporting rank (reset freely). */
  totals = { steps: 0, computeMs: 0, waitMs: 0 };
  private readonly pipe = new StepPipe();
  private readonly kvReads: KvReadPipe;

  constructor(
    private readonly route: TrafficRoute,
    private readonly vocabSize: number,
    headDim: number,
    private readonly trace: MeshTrace,
    private readonly reshards: ReshardLog,
  ) {
    this.kvReads = new KvReadPipe(headDim, () => this.pipe.takeId());
  }

  /** Steps in flight. */
  get size(): number {
    return this.pipe.size;
  }

  /** The largest logits the steps in flight expect back (what a control frame may carry). */
  get largestLogitBytes(): number {
    return this.pipe.largestLogitBytes;
  }

  /** Calls `idle` once no step is in flight. */
  whenIdle(idle: () => void): void {
    this.pipe.whenIdle(idle);
  }

  /** stepBatch whose requests may carry picks: the reporting rank returns an id for each picked row (token-pick.ts) and the logits of the others. */
  async stepRows(pool: KvLayout, requests: readonly StepRequest[], generation: number): Promise<PickedRows> {
    const plan = this.route.serving(generation);
    if (!plan) throw new TesseraError('TESSERA_ERR_RANK_LOST', `the mesh is re-sharding (generation ${generation} is not serving); wait with whenServing() and run the work again`);
    const traced = this.trace.driverSpans.begin();
    // A burst's later steps come back with it on a one-stage mesh only: its ranks are the ones that compute them.
    const burst = plan.layers.length === 1 ? burstSteps(requests, pool) : 0;
    const { id, result } = this.pipe.open(generation, stepRows(requests, this.vocabSize, burst));
    const frame = encodeControl(stepMessage(generation, id, pool, requests));
    // Sent in call order, so every rank sees steps in the same order; a failed send is a loss the membership reports.
    for (const rank of plan.ranks) void this.route.link(rank)?.sendFrame(frame).catch(() => undefined);
    this.trace.driverSpans.sent(traced);
    const { rows, timings } = await result;
    this.trace.driverSpans.done(traced, { sequences: requests.length, tokens: requests.reduce((sum, request) => sum + request.ids.length, 0) });
    this.lastTimings = timings;
    this.totals.steps++;
    this.totals.computeMs += timings.computeMs;
    this.totals.waitMs += timings.waitMs;
    this.reshards.stepDone(generation, rows.ids.length, requests.every((request) => request.ids.length === 1));
    return rows;
  }

  /** Every rank's KV rows of `runs`, read after the steps sent before: one answer per rank, naming its layers and heads. */
  async readKv(pool: KvLayout, runs: readonly KvReadRun[], generation: number): Promise<KvRankRows[]> {
    const plan = this.route.serving(generation);
    if (!plan) throw new TesseraError('TESSERA_ERR_RANK_LOST', `the mesh is re-sharding (generation ${generation} is not serving); its KV is gone`);
    const tokens = runs.reduce((sum, run) => sum + run.count, 0);
    const { id, result } = this.kvReads.open(generation, tokens, plan.ranks.length);
    const frame = encodeControl({ type: 'kv-read', generation, id, pool: { numBlocks: pool.numBlocks, blockSize: pool.blockSize }, runs: [...runs] });
    for (const rank of plan.ranks) void this.route.link(rank)?.sendFrame(frame).catch(() => undefined);
    return result;
  }

  /** Rows to the ranks of the stage holding `write.layer`, in order with the steps; false when `generation` no longer serves. */
  writeKv(write: Omit<Extract<ControlMessage, { type: 'kv-write' }>, 'type' | 'generation'>, body: Uint8Array, generation: number): boolean {
    const plan = this.route.serving(generation);
    if (!plan) return false;
    const stage = plan.layers.findIndex(([start, end]) => write.layer >= start && write.layer < end);
    const frame = encodeControl({ type: 'kv-write', generation, ...write }, body);
    plan.ranks.forEach((rank, index) => {
      if (Math.floor(index / plan.tp) === stage) void this.route.link(rank)?.sendFrame(frame).catch(() => undefined);
    });
    return true;
  }

  /** Why an answer breaks the protocol (its body does not fit what was asked), or undefined. */
  check(envelope: Envelope): ReturnType<typeof checkBody> {
    return envelope.message.type === 'kv-rows' ? this.kvReads.check(envelope) : checkBody(envelope, this.pipe);
  }

  /** Takes a rank's answer to a step or a KV read; false when the message is neither. */
  answer(envelope: Envelope): boolean {
    const { message, body } = envelope;
    if (message.type === 'logits') {
      // A copy: the frame's buffer may be shared with other messages.
      const logits = asFloats(body.slice());
      const ids = message.ids ? Int32Array.from(message.ids) : new Int32Array(logits.length / this.vocabSize).fill(-1);
      const following = burstOf(message.burst ?? [], ids.length);
      this.pipe.answer(message.id, { rows: { ids, logits, ...(following.length > 0 ? { following } : {}) }, timings: { computeMs: message.computeMs, waitMs: message.waitMs } });
    } else if (message.type === 'kv-rows') {
      // A copy of its own: the frame's buffer may be shared with other messages (and a Buffer's slice() is a view).
      this.kvReads.answer(message.id, { layers: message.layers, heads: message.heads, dtype: message.dtype, body: new Uint8Array(body) });
    } else if (message.type === 'kv-refused') {
      this.kvReads.refuse(message.id, new TesseraError(message.code, message.message));
    } else if (message.type === 'step-refused') {
      this.pipe.refuse(message.id, message.segment >= 0 ? new SegmentError(message.code, message.message, message.segment) : new TesseraError(message.code, message.message));
    } else return false;
    return true;
  }

  /** The step or KV read `id` fails with `error` (a compute failure of its own). */
  refuse(id: number, error: Error): void {
    this.pipe.refuse(id, error);
    this.kvReads.refuse(id, error);
  }

  /** Everything waiting on `generation` (and before) fails with `error`. */
  failGeneration(generation: number, error: Error): void {
    this.pipe.failGeneration(generation, error);
    this.kvReads.failGeneration(generation, error);
  }
}

/** A reply's burst ids [steps, rows] as one array per step. */
function burstOf(burst: readonly number[], rows: number): Int32Array[] {
  if (rows === 0) return [];
  return Array.from({ length: burst.length / rows }, (_, step) => Int32Array.from(burst.slice(step * rows, (step + 1) * rows)));
}
