/**
 * Writing a trace: Chrome trace JSON (chrome://tracing, ui.perfetto.dev),
 * one process per rank, each with its compute, send and receive tracks named.
 */
import { writeFileSync } from 'node:fs';
import { TRACE_THREADS, type TraceEvent } from '../core/trace-event.js';

/** Writes `events` of ranks 0..ranks-1 to `path`, with the names the viewer shows for ranks and tracks. */
export function writeChromeTrace(path: string, events: readonly TraceEvent[], ranks: number): void {
  const names: TraceEvent[] = [];
  for (let rank = 0; rank < ranks; rank++) {
    names.push({ name: 'process_name', ph: 'M', pid: rank, args: { name: `rank ${rank}` } });
    for (const [track, tid] of Object.entries(TRACE_THREADS)) names.push({ name: 'thread_name', ph: 'M', pid: rank, tid, args: { name: track } });
  }
  writeFileSync(path, `${JSON.stringify({ traceEvents: [...names, ...events], displayTimeUnit: 'ms' })}\n`);
}
