/**
 * The coordinator's own time in a mesh trace, on its process (beside the
 * re-shard spans): per step, encoding and sending the step to the ranks, and
 * waiting for the reporting rank's logits; between steps, the engine's work
 * on the driver (scheduling, sampling, detokenizing), which is the gap from
 * one step's logits to the next step. Nothing when not tracing.
 */
import { epochMicros, TRACE_THREADS, type TraceEvent } from '../core/trace-event.js';
import { COORDINATOR_TRACE_PID } from './reshard-log.js';

/** A longer gap between steps is idleness (no work queued), not the engine's work. */
const MAX_ENGINE_GAP_MICROS = 1_000_000;

export interface DriverStep {
  readonly startedAt: number;
  sentAt: number;
}

export class DriverSpans {
  private lastEnded: number | undefined;

  constructor(private readonly events: TraceEvent[] | undefined) {}

  begin(): DriverStep | undefined {
    if (!this.events) return undefined;
    const startedAt = epochMicros();
    const gap = this.lastEnded === undefined ? Infinity : startedAt - this.lastEnded;
    if (gap < MAX_ENGINE_GAP_MICROS) this.span('engine (schedule, sample)', TRACE_THREADS.compute, this.lastEnded!, startedAt, {});
    return { startedAt, sentAt: startedAt };
  }

  sent(step: DriverStep | undefined): void {
    if (!step) return;
    step.sentAt = epochMicros();
    this.span('encode and send step', TRACE_THREADS.send, step.startedAt, step.sentAt, {});
  }

  done(step: DriverStep | undefined, args: Record<string, number>): void {
    if (!step) return;
    this.lastEnded = epochMicros();
    this.span('wait for ranks', TRACE_THREADS.receive, step.sentAt, this.lastEnded, args);
  }

  private span(name: string, tid: number, from: number, to: number, args: Record<string, number>): void {
    this.events?.push({ name, cat: 'driver', ph: 'X', ts: from, dur: to - from, pid: COORDINATOR_TRACE_PID, tid, args });
  }
}
