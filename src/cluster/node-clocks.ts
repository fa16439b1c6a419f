/**
 * How far each worker's clock is from the coordinator's, so that a trace
 * gathering spans from several hosts lines them up: every process stamps
 * its spans with its own wall clock (epochMicros), and hosts' clocks differ
 * by milliseconds to seconds. NTP's method, one round trip at a time: the
 * coordinator stamps a probe (t0), the worker answers with its clock (t1),
 * the coordinator stamps the answer's arrival (t2); the worker's clock is
 * ahead by t1 - (t0 + t2) / 2, give or take half the round trip t2 - t0. Of
 * several probes the one with the shortest round trip wins (the least
 * queueing on either side).
 */
import type { TraceEvent } from '../core/trace-event.js';

export interface ClockSample {
  /** The coordinator's clock as the probe left (µs). */
  readonly sentAt: number;
  /** The worker's clock as it answered (µs). */
  readonly remoteAt: number;
  /** The coordinator's clock as the answer arrived (µs). */
  readonly receivedAt: number;
}

export interface ClockOffset {
  /** Worker clock minus coordinator clock, µs. */
  readonly offsetMicros: number;
  /** The round trip of the sample it comes from: the offset is good to half of it. */
  readonly roundTripMicros: number;
  readonly samples: number;
}

/** The offset from the sample with the shortest round trip; undefined without samples. */
export function clockOffset(samples: readonly ClockSample[]): ClockOffset | undefined {
  let best: ClockSample | undefined;
  for (const sample of samples) {
    if (sample.receivedAt < sample.sentAt) continue;
    if (!best || sample.receivedAt - sample.sentAt < best.receivedAt - best.sentAt) best = sample;
  }
  if (!best) return undefined;
  return { offsetMicros: best.remoteAt - (best.sentAt + best.receivedAt) / 2, roundTripMicros: best.receivedAt - best.sentAt, samples: samples.length };
}

/** Samples kept per node: probes come a few per plan, and old ones describe a clock that has drifted since. */
const KEPT_SAMPLES = 16;

export class NodeClocks {
  private readonly samples = new Map<string, ClockSample[]>();

  record(node: string, sample: ClockSample): void {
    const list = this.samples.get(node) ?? [];
    list.push(sample);
    if (list.length > KEPT_SAMPLES) list.shift();
    this.samples.set(node, list);
  }

  offset(node: string): ClockOffset | undefined {
    return clockOffset(this.samples.get(node) ?? []);
  }

  /**
   * `events` stamped by `node`, moved onto the coordinator's clock. Only an
   * offset larger than its own uncertainty (half the round trip) moves them:
   * on one host the clocks are the same and a probe answered late (a busy
   * rank) would otherwise shift its spans by half that delay.
   */
  align(node: string, events: readonly TraceEvent[]): TraceEvent[] {
    const measured = this.offset(node);
    const offset = measured && Math.abs(measured.offsetMicros) > measured.roundTripMicros / 2 ? measured.offsetMicros : 0;
    if (offset === 0) return [...events];
    return events.map((event) => (event.ts === undefined ? event : { ...event, ts: event.ts - offset }));
  }

  forget(node: string): void {
    this.samples.delete(node);
  }
}
