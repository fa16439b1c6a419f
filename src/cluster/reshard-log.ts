/**
 * One record per re-shard, for metrics, GET /admin/cluster, benchmarks and
 * the trace: why it happened, how long each part took (detecting a loss,
 * choosing the plan, loading, the first logits after it, re-prefilling
 * until the batch decodes again) and what it read.
 */
import { epochMicros, type TraceEvent } from '../core/trace-event.js';
import type { PlanReason } from './cluster-events.js';
import type { Plan } from './cluster-state.js';

/** The process id the coordinator's spans carry in a Chrome trace (ranks are 0..n-1). */
export const COORDINATOR_TRACE_PID = 1000;

export interface RankLoad {
  rank: number;
  node: string;
  bytesRead: number;
  /** Bytes of its new slices it did not hold: the floor of bytesRead. */
  newBytes: number;
  bytesHeld: number;
  loadMs: number;
}

export interface ReshardRecord {
  generation: number;
  reason: PlanReason;
  tp: number;
  pp: number;
  layers: [number, number][];
  /** Epoch ms when the coordinator learned it must re-shard (a loss detected, a join, an admin call). */
  decidedAt: number;
  /** How long the lost node had been silent when it was declared lost (0 for a closed connection). */
  silentMs?: number;
  /** Deciding → the plan chosen (waiting for in-flight steps, placement). */
  replanMs?: number;
  /** Plan chosen → every rank loaded and connected. */
  loadMs?: number;
  ranks: RankLoad[];
  /** Decided → the first step of the new plan that returned logits (the first resumed token follows at once). */
  firstLogitsMs?: number;
  /** Ready → the first step in which every sequence decodes one token (re-prefill done). */
  rePrefillMs?: number;
  /** Set when the plan never became ready (another loss superseded it). */
  abandoned?: boolean;
}

export class ReshardLog {
  readonly records: ReshardRecord[] = [];
  private readyAt = new Map<number, number>();

  constructor(
    /** Trace spans go here when tracing. */
    private readonly spans?: TraceEvent[],
    private readonly onRecord?: (record: ReshardRecord) => void,
  ) {}

  begin(plan: Plan, reason: PlanReason, decidedAt: number, silentMs: number | undefined): ReshardRecord {
    const record: ReshardRecord = { generation: plan.generation, reason, tp: plan.tp, pp: plan.pp, layers: plan.layers.map(([a, b]) => [a, b]), decidedAt, silentMs, ranks: [] };
    record.replanMs = Date.now() - decidedAt;
    this.records.push(record);
    if (silentMs) this.span('detect', decidedAt - silentMs, silentMs, { generation: plan.generation });
    this.span('replan', decidedAt, record.replanMs, { generation: plan.generation, reason });
    return record;
  }

  ready(record: ReshardRecord, ranks: RankLoad[]): void {
    const now = Date.now();
    record.ranks = ranks;
    record.loadMs = now - record.decidedAt - (record.replanMs ?? 0);
    this.readyAt.set(record.generation, now);
    const bytesRead = ranks.reduce((sum, rank) => sum + rank.bytesRead, 0);
    this.span('load shards', now - record.loadMs, record.loadMs, { generation: record.generation, bytesRead, newBytes: ranks.reduce((sum, rank) => sum + rank.newBytes, 0) });
    this.onRecord?.(record);
  }

  abandon(record: ReshardRecord): void {
    record.abandoned = true;
  }

  /** A step of `generation` finished: `rows` logits rows, `decodeOnly` when every segment was one token. */
  stepDone(generation: number, rows: number, decodeOnly: boolean): void {
    const record = this.records.at(-1);
    const readyAt = this.readyAt.get(generation);
    if (!record || record.generation !== generation || readyAt === undefined) return;
    const now = Date.now();
    if (record.firstLogitsMs === undefined && rows > 0) {
      record.firstLogitsMs = now - record.decidedAt;
      this.span('first logits', readyAt, now - readyAt, { generation });
      this.onRecord?.(record);
    }
    if (record.rePrefillMs === undefined && decodeOnly && record.firstLogitsMs !== undefined) {
      record.rePrefillMs = now - readyAt;
      this.span('re-prefill', readyAt, record.rePrefillMs, { generation });
      this.onRecord?.(record);
    }
  }

  private span(name: string, startMs: number, durationMs: number, args: Record<string, number | string>): void {
    if (!this.spans) return;
    const ts = epochMicros() - (Date.now() - startMs) * 1000;
    this.spans.push({ name, cat: 'reshard', ph: 'X', ts, dur: durationMs * 1000, pid: COORDINATOR_TRACE_PID, tid: 0, args });
  }
}
