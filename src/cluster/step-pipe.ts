/**
 * Steps in flight on the mesh, by id: each is answered by the reporting
 * rank's logits, refused (a SegmentError or a step-wide error, the mesh goes
 * on), or failed with its whole generation when a rank is lost. A reply's
 * body is checked against its step (checkBody) before anyone reads it.
 */
import { TesseraError } from '../core/errors.js';
import type { Envelope } from './control-message.js';
import type { StepRequest } from './rank-runner.js';

/** Per-step time on the reporting rank: computing vs waiting for messages. */
export interface StepTimings {
  computeMs: number;
  waitMs: number;
}

export interface StepResult {
  logits: Float32Array;
  timings: StepTimings;
}

interface Pending {
  generation: number;
  /** Bytes of the logits the reporting rank must send back (its frame is checked against this). */
  logitBytes: number;
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

  /** A new step of `generation` whose logits take `logitBytes`: its id (for the step message) and its result. */
  open(generation: number, logitBytes: number): { id: number; result: Promise<StepResult> } {
    const id = this.nextId++;
    const result = new Promise<StepResult>((resolve, reject) => this.pending.set(id, { generation, logitBytes, resolve, reject }));
    return { id, result };
  }

  /** The logits' size step `id` expects, or undefined when no such step is in flight. */
  logitBytes(id: number): number | undefined {
    return this.pending.get(id)?.logitBytes;
  }

  /** The largest logits any step in flight expects (bounds the frames a rank may send). */
  get largestLogitBytes(): number {
    let largest = 0;
    for (const pending of this.pending.values()) largest = Math.max(largest, pending.logitBytes);
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

/** Bytes of the logits a step returns: [rows, vocabSize] float32, rows as each segment asks. */
export function logitBytes(requests: readonly StepRequest[], vocabSize: number): number {
  const rows = requests.reduce((sum, request) => sum + (request.rows === 'all' ? request.ids.length : request.rows === 'last' && request.ids.length > 0 ? 1 : 0), 0);
  return rows * vocabSize * 4;
}

/** A reply's body: only on logits, of the size its step expects; else the worker broke the protocol. */
export function checkBody({ message, body }: Envelope, pipe: StepPipe): TesseraError | undefined {
  if (message.type !== 'logits') return body.byteLength === 0 ? undefined : new TesseraError('TESSERA_ERR_PROTOCOL', `a ${message.type} message carried ${body.byteLength} bytes of body`);
  const expected = pipe.logitBytes(message.id);
  // Logits of a step no longer in flight (failed with its generation) are dropped unread.
  if (expected === undefined || body.byteLength === expected) return undefined;
  return new TesseraError('TESSERA_ERR_PROTOCOL', `logits of step ${message.id} came as ${body.byteLength} bytes; the step expects ${expected}`);
}
