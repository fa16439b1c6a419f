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
import { byteSize, type DType } from '../core/dtype.js';
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
  /** Shared rows: rows of projections this rank computed. */
  sharedRows: number;
}

/** What a shared-rows call computes, for its span: the weights' type and shape, and x's tokens. */
interface SharedWork {
  dtype: DType;
  /** Rows of the whole projection (or concatenation) and the weights' columns. */
  shape: [rows: number, cols: number];
  /** 2 for gate and up (silu · up), else 1. */
  weights: number;
  numTokens: number;
}

/** What a rank's backend lends shared rows: its addon context and activation mode (NativeBackend.rowContext). */
export interface RowContext {
  readonly context: NativeHandle;
  readonly floatActivations: boolean;
}

export class NativeCollectiveGroup {
  /** This rank's shared area halves (shm groups): partials written there need no copy. */
  private readonly areas: [Float32Array, Float32Array] | undefined;
  private readonly statsOut = new Float64Array(6);

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
        this.timed(
          'shared-rows',
          x.byteLength,
          () => this.comm.shareRows(this.group, backend.context, weights.map((w) => asNativeWeight(w).handle), x, numTokens, heldBegin, fullRows, out, backend.floatActivations),
          { dtype: weights[0]!.dtype, shape: [fullRows, weights[0]!.shape[1]!], weights: weights.length, numTokens },
        ),
      shareConcatenated: (weights, x, numTokens, outs) =>
        this.timed(
          'shared-rows',
          x.byteLength,
          () => this.comm.shareRowsConcatenated(this.group, backend.context, weights.map((w) => handle(w.held)), x, numTokens, weights.map((w) => w.heldBegin), weights.map((w) => w.shape[0]!), outs, backend.floatActivations),
          { dtype: weights[0]!.dtype, shape: [weights.reduce((sum, w) => sum + w.shape[0]!, 0), weights[0]!.shape[1]!], weights: 1, numTokens },
        ),
    };
  }

  times(): CollectiveTimes {
    this.comm.commStats(this.group, this.statsOut);
    const [calls, totalNs, waitNs, bytesSent, computeNs, sharedRows] = this.statsOut;
    return { calls, totalMs: totalNs / 1e6, waitMs: waitNs / 1e6, computeMs: computeNs / 1e6, bytesSent, sharedRows };
  }

  /**
   * The call, traced as a collective span: its wait for peers and, for
   * shared rows (`work`), the time computing this rank's rows, the weight
   * bytes they read and their flops (profiler/trace-attribution.ts counts
   * those as a matmul).
   */
  private timed<T>(name: string, bytes: number, call: () => T, work?: SharedWork): T {
    if (!this.spans) return nativeCall(call);
    const started = epochMicros();
    const before = this.times();
    const result = nativeCall(call);
    const after = this.times();
    const args: Record<string, number | string> = { bytes, waitUs: Math.round((after.waitMs - before.waitMs) * 1000) };
    if (work) {
      const rows = after.sharedRows - before.sharedRows;
      const [fullRows, cols] = work.shape;
      Object.assign(args, {
        computeUs: Math.round((after.computeMs - before.computeMs) * 1000),
        dtype: work.dtype,
        shape: `[${fullRows}, ${cols}]${work.weights > 1 ? ` x ${work.weights}` : ''}`,
        weightBytes: work.weights * rows * byteSize(work.dtype, cols),
        flops: 2 * work.weights * rows * cols * work.numTokens,
      });
    }
    this.spans.events.push({ name, cat: 'collective', ph: 'X', ts: started, dur: epochMicros() - started, pid: this.spans.pid, tid: 0, args });
    return result;
  }
}

