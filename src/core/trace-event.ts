/**
 * Trace events in the Chrome trace JSON Object Format (chrome://tracing,
 * Perfetto), and the clock every recorder stamps them with. They sit in core
 * because every layer that records spans (backend ops, transports, ranks'
 * steps) may import core, and one rank's spans from several layers must land
 * in one array.
 */

/** Span arguments shown in the trace viewer's details pane. */
export type TraceArgs = Record<string, number | string>;

/** One traceEvents entry. */
export interface TraceEvent {
  name: string;
  /** Category, for filtering in the viewer ('backend' for kernel ops). */
  cat?: string;
  /** Complete span, metadata, or counter. */
  ph: 'X' | 'M' | 'C';
  /** Microseconds since the Unix epoch, so ranks in different processes line up. */
  ts?: number;
  dur?: number;
  /** The rank. */
  pid: number;
  /** The track within a rank: TRACE_THREADS. */
  tid?: number;
  args?: TraceArgs;
}

/**
 * Tracks of a rank. Steps and the backend ops inside them share one track so
 * the viewer nests ops under their step; message spans overlap compute, so
 * they get tracks of their own.
 */
export const TRACE_THREADS = { compute: 0, send: 1, receive: 2 } as const;

/** Now, in microseconds since the Unix epoch. */
export function epochMicros(): number {
  return (performance.timeOrigin + performance.now()) * 1000;
}
