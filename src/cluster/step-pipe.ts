/**
 * Steps in flight on the mesh, by id: each is answered by the reporting
 * rank's logits, refused (a SegmentError or a step-wide error, the mesh goes
 * on), or failed with its whole generation when a rank is lost.
 */

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

  /** A new step of `generation`: its id (for the step message) and its result. */
  open(generation: number): { id: number; result: Promise<StepResult> } {
    const id = this.nextId++;
    const result = new Promise<StepResult>((resolve, reject) => this.pending.set(id, { generation, resolve, reject }));
    return { id, result };
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
