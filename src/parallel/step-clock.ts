/**
 * Where a rank's step time goes, for the per-token breakdown of `--trace`
 * and the benchmarks: compute (inside backend ops), waiting for peers
 * (blocked in a native collective, or with a message receive pending),
 * transfer (inside collectives and sends but not waiting: copies, sums,
 * syscalls), and the rest of the step's wall time — JavaScript between ops
 * and event-loop turns — reported as event-loop time.
 */
import type { Backend } from '../backend/backend.js';
import type { CollectiveTimes } from './native-group.js';

export interface StepBreakdown {
  stepMs: number;
  computeMs: number;
  waitMs: number;
  transferMs: number;
  eventLoopMs: number;
}

/** What the clock reads from the message side: the TimedTransport, and native collectives when used. */
export interface CommClocks {
  /** Milliseconds with a receive pending, and spent in sends. */
  readonly transport: { readonly waitMs: number; readonly sendMs: number };
  readonly collectives?: { times(): CollectiveTimes };
}

export class StepClock {
  /** Milliseconds inside backend ops (clockedBackend adds to it). */
  computeMs = 0;
  private start = { at: 0, computeMs: 0, transportWaitMs: 0, sendMs: 0, nativeWaitMs: 0, nativeTotalMs: 0, nativeComputeMs: 0 };

  constructor(private readonly comm: CommClocks) {}

  begin(): void {
    const native = this.comm.collectives?.times();
    this.start = {
      at: performance.now(),
      computeMs: this.computeMs,
      transportWaitMs: this.comm.transport.waitMs,
      sendMs: this.comm.transport.sendMs,
      nativeWaitMs: native?.waitMs ?? 0,
      nativeTotalMs: native?.totalMs ?? 0,
      nativeComputeMs: native?.computeMs ?? 0,
    };
  }

  end(): StepBreakdown {
    const stepMs = performance.now() - this.start.at;
    const native = this.comm.collectives?.times();
    const nativeWaitMs = (native?.waitMs ?? 0) - this.start.nativeWaitMs;
    const nativeTotalMs = (native?.totalMs ?? 0) - this.start.nativeTotalMs;
    // Shared rows compute inside a collective: that time is compute, not transfer.
    const nativeComputeMs = (native?.computeMs ?? 0) - this.start.nativeComputeMs;
    const computeMs = this.computeMs - this.start.computeMs + nativeComputeMs;
    const waitMs = this.comm.transport.waitMs - this.start.transportWaitMs + nativeWaitMs;
    const transferMs = nativeTotalMs - nativeWaitMs - nativeComputeMs + (this.comm.transport.sendMs - this.start.sendMs);
    return { stepMs, computeMs, waitMs, transferMs, eventLoopMs: Math.max(0, stepMs - computeMs - waitMs - transferMs) };
  }
}

/** Sums of breakdowns over steps, and their per-step means. */
export class StepTotals {
  steps = 0;
  tokens = 0;
  readonly sums: StepBreakdown = { stepMs: 0, computeMs: 0, waitMs: 0, transferMs: 0, eventLoopMs: 0 };

  add(step: StepBreakdown, tokens: number): void {
    this.steps++;
    this.tokens += tokens;
    for (const key of Object.keys(this.sums) as (keyof StepBreakdown)[]) this.sums[key] += step[key];
  }

  /** Milliseconds per step. */
  mean(): StepBreakdown {
    const out = { ...this.sums };
    for (const key of Object.keys(out) as (keyof StepBreakdown)[]) out[key] = this.steps === 0 ? 0 : out[key] / this.steps;
    return out;
  }
}

/**
 * The backend with every op's time added to `clock.computeMs`. A Proxy, so
 * every method (optional ones too) is forwarded untouched; the wrapped
 * functions are made once per method.
 */
export function clockedBackend(backend: Backend, clock: StepClock): Backend {
  const wrapped = new Map<PropertyKey, unknown>();
  return new Proxy(backend, {
    get(target, property, receiver) {
      const value: unknown = Reflect.get(target, property, receiver);
      if (typeof value !== 'function') return value;
      let timed = wrapped.get(property);
      if (!timed) {
        const op = value as (...args: unknown[]) => unknown;
        timed = (...args: unknown[]): unknown => {
          const started = performance.now();
          try {
            return op.apply(target, args);
          } finally {
            clock.computeMs += performance.now() - started;
          }
        };
        wrapped.set(property, timed);
      }
      return timed;
    },
  });
}
