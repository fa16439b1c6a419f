/**
 * Steps in flight on the mesh, by id: each is answered by the reporting
 * rank's rows (an id for each row it picked, token-pick.ts; logits for the
 * others), refused (a SegmentError or a step-wide error, the mesh goes
 * on), or failed with its whole generation when a rank is lost. A reply's
 * body is checked against its step (checkBody) before anyone reads it.
 */
import { TesseraError } from '../core/errors.js';
import type { PickedRows } from '../engine/token-pick.js';
import type { Envelope } from './control-message.js';
import type { StepRequest } from './rank-runner.js';

/** Per-step time on the reporting rank: computing vs waiting for messages. */
export interface StepTimings {
  computeMs: number;
  waitMs: number;
}

export interface StepResult {
  rows: PickedRows;
  timings: StepTimings;
}

/** The rows a step's reply must carry: which the rank picks (an id each) and how many come as logits. */
export interface StepRows {
  /** [rows] 1 where the rank picks the token, 0 where it sends the row's logits. */
  picked: Uint8Array;
  vocabSize: number;
  /** Bytes of the logits the reporting rank must send back (its frame is checked against this). */
  logitBytes: number;
  /** Steps after the first whose ids the reply carries (a burst, decode-burst.ts), 0 for none. */
  burst: number;
}

interface Pending {
  generation: number;
  rows: StepRows;
  resolve: (result: StepResult) => void;
  reject: (error: Error) => void;
}

export class StepPipe {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();
  private idleWaiters: (() => void)[] = [];

  get size(): number {
    return this.pending.size;
  }

  /** A fresh id: steps take theirs here, and so do other requests whose failures a rank reports by id (KV reads). */
  takeId(): number {
    return this.nextId++;
  }

  /** A new step of `generation` whose reply carries `rows`: its id (for the step message) and its result. */
  open(generation: number, rows: StepRows): { id: number; result: Promise<StepResult> } {
    const id = this.takeId();
    const result = new Promise<StepResult>((resolve, reject) => this.pending.set(id, { generation, rows, resolve, reject }));
    return { id, result };
  }

  /** The rows step `id` expects, or undefined when no such step is in flight. */
  rows(id: number): StepRows | undefined {
    return this.pending.get(id)?.rows;
  }

  /** The largest logits any step in flight expects (bounds the frames a rank may send). */
  get largestLogitBytes(): number {
    let largest = 0;
    for (const pending of this.pending.values()) largest = Math.max(largest, pending.rows.logitBytes);
    return largest;
  }

  answer(id: number, result: StepResult): void {
    this.take(id)?.resolve(result);
  }

  refuse(id: number, error: Error): void {
    this.take(id)?.reject(error);
  }

  /** Fails every step of `generation` and older ones. */
  failGeneration(generation: number, error: Error): void {
    for (const [id, pending] of this.pending) {
      if (pending.generation <= generation) this.take(id)?.reject(error);
    }
  }

  /** Runs `callback` once no step is in flight (now, if none is). */
  whenIdle(callback: () => void): void {
    if (this.pending.size === 0) callback();
    else this.idleWaiters.push(callback);
  }

  private take(id: number): Pending | undefined {
    const pending = this.pending.get(id);
    if (!pending) return undefined;
    this.pending.delete(id);
    if (this.pending.size === 0) {
      const waiters = this.idleWaiters;
      this.idleWaiters = [];
      // After the step's own continuation: the caller sees its result before anything reshapes the mesh.
      for (const waiter of waiters) queueMicrotask(waiter);
    }
    return pending;
  }
}

/**
 * The rows a step returns, in request order: every position for 'all', the
 * last for 'last' (picked when the request has a pick); `burst`: the later
 * steps whose ids come too (decode-burst.ts burstSteps).
 */
export function stepRows(requests: readonly StepRequest[], vocabSize: number, burst = 0): StepRows {
  const picked: number[] = [];
  for (const request of requests) {
    if (request.rows === 'all') for (let i = 0; i < request.ids.length; i++) picked.push(0);
    else if (request.rows === 'last' && request.ids.length > 0) picked.push(request.pick ? 1 : 0);
  }
  const logitRows = picked.length - picked.reduce((sum, flag) => sum + flag, 0);
  return { picked: Uint8Array.from(picked), vocabSize, logitBytes: logitRows * vocabSize * 4, burst };
}

/**
 * A reply's body and ids: only on logits, the body of the size its step
 * expects, an id in the vocabulary for exactly the rows it picks (-1 for the
 * others); else the worker broke the protocol.
 */
export function checkBody({ message, body }: Envelope, pipe: StepPipe): TesseraError | undefined {
  if (message.type !== 'logits') return body.byteLength === 0 ? undefined : new TesseraError('TESSERA_ERR_PROTOCOL', `a ${message.type} message carried ${body.byteLength} bytes of body`);
  const rows = pipe.rows(message.id);
  // Logits of a step no longer in flight (failed with its generation) are dropped unread.
  if (rows === undefined) return undefined;
  if (body.byteLength !== rows.logitBytes) return new TesseraError('TESSERA_ERR_PROTOCOL', `logits of step ${message.id} came as ${body.byteLength} bytes; the step expects ${rows.logitBytes}`);
  const ids = message.ids ?? [];
  const picks = rows.picked.some((flag) => flag === 1);
  if (!picks && ids.length === 0) return undefined;
  if (ids.length !== rows.picked.length) return new TesseraError('TESSERA_ERR_PROTOCOL', `step ${message.id} came back with ${ids.length} ids for its ${rows.picked.length} rows`);
  const bad = ids.findIndex((id, row) => (rows.picked[row] === 1 ? !(id >= 0 && id < rows.vocabSize) : id !== -1));
  if (bad < 0) return checkBurst(message.id, message.burst ?? [], rows);
  return new TesseraError('TESSERA_ERR_PROTOCOL', `step ${message.id}'s row ${bad} came back as id ${ids[bad]}; the step expects ${rows.picked[bad] === 1 ? `an id in [0, ${rows.vocabSize})` : '-1 (its logits)'}`);
}

/** A burst's ids: one per row for each later step the step asked for, each in the vocabulary. */
function checkBurst(id: number, burst: readonly number[], rows: StepRows): TesseraError | undefined {
  const expected = rows.burst * rows.picked.length;
  if (burst.length !== expected) return new TesseraError('TESSERA_ERR_PROTOCOL', `step ${id} came back with ${burst.length} burst ids; its ${rows.burst} later steps of ${rows.picked.length} rows take ${expected}`);
  const bad = burst.findIndex((picked) => picked >= rows.vocabSize);
  return bad < 0 ? undefined : new TesseraError('TESSERA_ERR_PROTOCOL', `step ${id}'s burst id ${burst[bad]} is outside the vocabulary [0, ${rows.vocabSize})`);
}
