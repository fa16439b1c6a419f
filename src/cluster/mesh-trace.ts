/**
 * What a coordinator records of a run beside its cluster state: with
 * `--trace`, every rank's spans (moved onto this process's clock by probes
 * sent after each plan), its own re-shard and driver spans, written as one
 * Chrome trace when the mesh closes; always, each rank's step-time sums as
 * it shuts down (the mesh report).
 */
import { epochMicros, type TraceEvent } from '../core/trace-event.js';
import { writeChromeTrace } from '../profiler/chrome-trace.js';
import type { NodeId } from './cluster-state.js';
import type { ControlMessage } from './control-message.js';
import { DriverSpans } from './driver-spans.js';
import { NodeClocks } from './node-clocks.js';
import type { NodeLink } from './node-link.js';
import { COORDINATOR_TRACE_PID } from './reshard-log.js';

/** Probes per rank after each plan: the shortest round trip of them sets the offset. */
const CLOCK_PROBES = 4;

export type RankStats = Extract<ControlMessage, { type: 'stats' }>;

export class MeshTrace {
  /** Each rank's step-time sums (by its rank in the last plan it ran), sent as it shuts down. */
  readonly rankStats: RankStats[] = [];
  /** Each worker's clock against this process's, for lining up the spans of several hosts. */
  readonly clocks = new NodeClocks();
  /** The driver's own time per step, when tracing. */
  readonly driverSpans: DriverSpans;
  /** Where spans go: undefined when not tracing. */
  readonly events: TraceEvent[] | undefined;
  private mostRanks = 0;

  /** `path`: the trace file (--trace), or undefined. */
  constructor(private readonly path: string | undefined) {
    this.events = path ? [] : undefined;
    this.driverSpans = new DriverSpans(this.events);
  }

  /** A plan of `ranks` starts: the trace gets a process per rank of the widest plan. */
  planned(ranks: readonly NodeId[]): void {
    this.mostRanks = Math.max(this.mostRanks, ranks.length);
  }

  /** Takes a worker's stats, trace and clock-reply messages; whether `message` was one. */
  receive(id: NodeId, message: ControlMessage): boolean {
    if (message.type === 'stats') this.rankStats[message.rank] = message;
    else if (message.type === 'trace') this.events?.push(...this.clocks.align(id, message.events));
    else if (message.type === 'clock-reply') this.clocks.record(id, { sentAt: message.sentAt, remoteAt: message.at, receivedAt: epochMicros() });
    else return false;
    return true;
  }

  /** Clock probes to each rank while it waits for its first step (answers come back through `receive`). */
  probeClocks(ranks: readonly NodeId[], links: ReadonlyMap<NodeId, NodeLink>): void {
    for (const id of ranks) {
      const link = links.get(id);
      for (let probe = 0; probe < CLOCK_PROBES; probe++) void link?.send({ type: 'clock', sentAt: epochMicros() }).catch(() => undefined);
    }
  }

  /** Writes the trace file (when tracing), once the ranks have sent their spans. */
  write(): void {
    if (!this.path || !this.events) return;
    this.events.push({ name: 'process_name', ph: 'M', pid: COORDINATOR_TRACE_PID, args: { name: 'coordinator' } });
    writeChromeTrace(this.path, this.events, this.mostRanks);
  }
}
