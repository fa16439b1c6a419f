/**
 * A stage's collectives run by the addon (native/src/comm/): synchronously,
 * on the rank's compute path, with no event-loop turn per message — over
 * shared memory for ranks on one host, over the addon's own sockets
 * otherwise. Same shape and same bits as CollectiveGroup (the canonical
 * reduction order of DESIGN §4); the promises it returns are already settled.
 */
import type { NativeHandle } from '../backend/native/native-addon.js';
import { epochMicros, type TraceEvent } from '../core/trace-event.js';
import type { Weight } from '../backend/backend.js';
import { asNativeWeight } from '../backend/native/native-weight.js';
import type { RowSharing } from '../model/shared-stage.js';
import { nativeCall, type NativeComm } from './native-comm.js';

/** Where a group's time went since it was made. */
export interface CollectiveTimes {
  calls: number;
  /** Inside collectives. */
  totalMs: number;
  /** Of which blocked on peers. */
  waitMs: number;
  /** Of which computing (shared rows: the rows this rank claimed). */
  computeMs: number;
  bytesSent: number;
}

/** What a rank's backend lends shared rows: its addon context and activation mode (NativeBackend.rowContext). */
export interface RowContext {
  readonly context: NativeHandle;
  readonly floatActivations: boolean;
}

export class NativeCollectiveGroup {
  /** This rank's shared area halves (shm groups): partials written there need no copy. */
  private readonly areas: [Float32Array, Float32Array] | undefined;
  private readonly statsOut = new Float64Array(5);

  constructor(
    private readonly comm: NativeComm,
    private readonly group: NativeHandle,
    readonly size: number,
    /** This rank's index in the group. */
    readonly rank: number,
    /** With tracing: a span per collective, on the compute track of `pid`. */
    readonly spans?: { events: TraceEvent[]; pid: number },
  ) {
    this.areas = comm.commAreas(group);
  }

  /** A group of `members` (mesh ranks, in group order) on a native mesh; `slot` keeps groups on one shm mesh apart. */
  static open(comm: NativeComm, mesh: NativeHandle, members: readonly number[], rank: number, slot: number, spans?: { events: TraceEvent[]; pid: number }): NativeCollectiveGroup {
    const group = nativeCall(() => comm.commGroup(mesh, Int32Array.from(members), slot));
    return new NativeCollectiveGroup(comm, group, members.length, members.indexOf(rank), spans);
  }

  /** Sums in place, in the canonical tree order: `partial` holds the sum afterwards and is returned. */
  allReduce(partial: Float32Array): Promise<Float32Array> {
    this.timed('all-reduce', partial.byteLength, () => this.comm.commAllReduce(this.group, partial));
    return Promise.resolve(partial);
  }

  /** Each member's [rows, width_i] → [rows, sum of widths], members' columns in group order. */
  allGatherColumns(slice: Float32Array, rows: number): Promise<Float32Array> {
    if (this.size === 1) return Promise.resolve(slice);
    return Promise.resolve(this.timed('all-gather', slice.byteLength, () => this.comm.commAllGatherColumns(this.group, slice, rows)));
  }

  /** Every member's bytes, in group order. */
  allGather(mine: Uint8Array): Uint8Array[] {
    return this.timed('all-gather', mine.byteLength, () => this.comm.commAllGather(this.group, mine));
  }

  /** parts[j] goes to member j; what each member sent here, in group order. */
  allToAll(parts: Uint8Array[]): Uint8Array[] {
    return this.timed('all-to-all', parts.reduce((sum, part) => sum + part.byteLength, 0), () => this.comm.commAllToAll(this.group, parts));
  }

  /** Blocks until every member has called it. */
  barrier(): void {
    this.allGather(new Uint8Array(0));
  }

  /**
   * A buffer for the partial of the next allReduce in memory the peers read
   * in place (shm), or undefined. The sum stays there, read-only, until the
   * collective after the next.
   */
  partialBuffer(length: number): Float32Array | undefined {
    if (!this.areas || length * 4 > this.areas[0].byteLength) return undefined;
    return this.areas[this.comm.commNextHalf(this.group)].subarray(0, length);
  }

  /**
   * Shared rows over this group with a backend's kernels: only for two
   * members on shared memory (undefined otherwise). Weights must be the
   * backend's (NativeWeight); spans are traced like a collective's.
   */
  rowSharing(backend: RowContext): RowSharing | undefined {
    if (!this.areas || this.size !== 2) return undefined;
    const handle = (weight: Weight): NativeHandle | null => (weight.shape[0] === 0 ? null : asNativeWeight(weight).handle);
    return {
      share: (weights, x, numTokens, heldBegin, fullRows, out) =>
        this.timed('shared-rows', x.byteLength, () => this.comm.shareRows(this.group, backend.context, weights.map((w) => asNativeWeight(w).handle), x, numTokens, heldBegin, fullRows, out, backend.floatActivations)),
      shareConcatenated: (weights, x, numTokens, outs) =>
        this.timed('shared-rows', x.byteLength, () =>
          this.comm.shareRowsConcatenated(this.group, backend.context, weights.map((w) => handle(w.held)), x, numTokens, weights.map((w) => w.heldBegin), weights.map((w) => w.shape[0]!), outs, backend.floatActivations),
        ),
    };
  }

  times(): CollectiveTimes {
    this.comm.commStats(this.group, this.statsOut);
    const [calls, totalNs, waitNs, bytesSent, computeNs] = this.statsOut;
    return { calls, totalMs: totalNs / 1e6, waitMs: waitNs / 1e6, computeMs: computeNs / 1e6, bytesSent };
  }

  private timed<T>(name: string, bytes: number, call: () => T): T {
    if (!this.spans) return nativeCall(call);
    const started = epochMicros();
    const waitedBefore = this.times().waitMs;
    const result = nativeCall(call);
    const waitUs = (this.times().waitMs - waitedBefore) * 1000;
    this.spans.events.push({ name, cat: 'collective', ph: 'X', ts: started, dur: epochMicros() - started, pid: this.spans.pid, tid: 0, args: { bytes, waitUs: Math.round(waitUs) } });
    return result;
  }
}

