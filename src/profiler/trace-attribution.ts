/**
 * Where each token's time went, from a Chrome trace of steps, backend ops and
 * messages (the spans `--trace` records): per rank and per phase (prefill,
 * decode), time in matrix multiplies (by dtype and shape), attention, KV
 * writes, pointwise ops, waiting for and sending messages, and what is left
 * of a step (the model's JavaScript between ops). Pure: events in, totals out.
 */
import { TRACE_THREADS, type TraceEvent } from '../core/trace-event.js';

export type Phase = 'prefill' | 'decode';

export const TIME_CATEGORIES = ['matmul', 'attention', 'kv-write', 'pointwise', 'communication-wait', 'communication-transfer', 'step-overhead'] as const;
export type TimeCategory = (typeof TIME_CATEGORIES)[number];

/** One kind of op in one phase: every call of it summed. */
export interface OpTotal {
  /** "matmul q8_0 [5632, 2048]", "attentionBatch", ... */
  readonly key: string;
  readonly category: TimeCategory;
  readonly dtype?: string;
  calls: number;
  ms: number;
  /** Weight or KV bytes read. */
  bytes: number;
  flops: number;
}

export interface PhaseTotals {
  readonly rank: number;
  readonly phase: Phase;
  steps: number;
  /** Tokens the phase produced (decode) or consumed (prefill). */
  tokens: number;
  /** Sum of step spans, ms. */
  stepMs: number;
  readonly byCategory: Record<TimeCategory, number>;
  readonly ops: Map<string, OpTotal>;
}

const POINTWISE = new Set(['rmsNorm', 'rope', 'siluMul', 'addInPlace', 'addBias', 'embed', 'readRows']);

function category(name: string): TimeCategory | undefined {
  if (name === 'matmul' || name === 'matmulMany') return 'matmul';
  if (name === 'attention' || name === 'attentionBatch') return 'attention';
  if (name === 'writeKv' || name === 'writeKvBatch') return 'kv-write';
  if (POINTWISE.has(name)) return 'pointwise';
  return undefined;
}

function argNumber(event: TraceEvent, key: string): number {
  const value = event.args?.[key];
  return typeof value === 'number' ? value : 0;
}

function argText(event: TraceEvent, key: string): string | undefined {
  const value = event.args?.[key];
  return typeof value === 'string' ? value : undefined;
}

function opKey(event: TraceEvent, kind: TimeCategory): string {
  if (kind !== 'matmul') return event.name;
  const shape = argText(event, 'shape') ?? argText(event, 'shapes') ?? '';
  return `${event.name} ${argText(event, 'dtype') ?? ''} ${shape}`.trim();
}

function emptyCategories(): Record<TimeCategory, number> {
  return Object.fromEntries(TIME_CATEGORIES.map((name) => [name, 0])) as Record<TimeCategory, number>;
}

const inside = (event: TraceEvent, step: TraceEvent): boolean =>
  (event.ts ?? 0) >= (step.ts ?? 0) && (event.ts ?? 0) + (event.dur ?? 0) <= (step.ts ?? 0) + (step.dur ?? 0) + 1;

/** A step that processes more tokens than sequences prefills prompts; one token per sequence decodes. */
export function stepPhase(step: TraceEvent): Phase {
  return argNumber(step, 'tokens') > Math.max(1, argNumber(step, 'sequences')) ? 'prefill' : 'decode';
}

/** `ms` of the event (all of it by default) as an op of `kind`. */
function addOp(totals: PhaseTotals, event: TraceEvent, kind: TimeCategory, ms = (event.dur ?? 0) / 1000): void {
  const key = opKey(event, kind);
  const op = totals.ops.get(key) ?? { key, category: kind, dtype: argText(event, 'dtype'), calls: 0, ms: 0, bytes: 0, flops: 0 };
  op.calls += 1;
  op.ms += ms;
  op.bytes += argNumber(event, 'weightBytes') + argNumber(event, 'kvBytes');
  op.flops += argNumber(event, 'flops');
  totals.ops.set(key, op);
  totals.byCategory[kind] += ms;
}

function attributeStep(totals: PhaseTotals, step: TraceEvent, events: readonly TraceEvent[]): void {
  const stepMs = (step.dur ?? 0) / 1000;
  let accounted = 0;
  for (const event of events) {
    if (event.ph !== 'X' || event === step || !inside(event, step)) continue;
    const kind = event.cat === 'backend' ? category(event.name) : undefined;
    if (kind) {
      addOp(totals, event, kind);
      accounted += (event.dur ?? 0) / 1000;
    } else if (event.cat === 'collective') {
      // A native collective runs on the compute thread: its wait for peers, then its copies and sums; shared rows
      // also compute (computeUs, with the weight bytes and flops of the rows this rank took): that part is a matmul.
      const ms = (event.dur ?? 0) / 1000;
      const waitMs = Math.min(ms, argNumber(event, 'waitUs') / 1000);
      const computeMs = Math.min(ms - waitMs, argNumber(event, 'computeUs') / 1000);
      if (computeMs > 0) addOp(totals, event, 'matmul', computeMs);
      totals.byCategory['communication-wait'] += waitMs;
      totals.byCategory['communication-transfer'] += ms - waitMs - computeMs;
      accounted += ms;
    } else if (event.tid === TRACE_THREADS.receive) {
      totals.byCategory['communication-wait'] += (event.dur ?? 0) / 1000;
      accounted += (event.dur ?? 0) / 1000;
    } else if (event.tid === TRACE_THREADS.send) {
      // Sends run beside the compute thread's work; they are shown, not subtracted.
      totals.byCategory['communication-transfer'] += (event.dur ?? 0) / 1000;
    }
  }
  totals.byCategory['step-overhead'] += Math.max(0, stepMs - accounted);
  totals.steps += 1;
  totals.stepMs += stepMs;
  totals.tokens += stepPhase(step) === 'decode' ? Math.max(1, argNumber(step, 'sequences')) : argNumber(step, 'tokens');
}

/** Totals per rank and phase; ranks are the trace's processes. */
export function attributeTrace(events: readonly TraceEvent[]): PhaseTotals[] {
  const byRank = new Map<number, TraceEvent[]>();
  for (const event of events) {
    if (event.ph !== 'X') continue;
    const list = byRank.get(event.pid) ?? [];
    list.push(event);
    byRank.set(event.pid, list);
  }
  const out: PhaseTotals[] = [];
  for (const [rank, list] of [...byRank.entries()].sort((a, b) => a[0] - b[0])) {
    const phases = new Map<Phase, PhaseTotals>();
    for (const step of list.filter((event) => event.name === 'step')) {
      const phase = stepPhase(step);
      const totals = phases.get(phase) ?? { rank, phase, steps: 0, tokens: 0, stepMs: 0, byCategory: emptyCategories(), ops: new Map() };
      phases.set(phase, totals);
      attributeStep(totals, step, list);
    }
    out.push(...[...phases.values()].sort((a, b) => a.phase.localeCompare(b.phase)));
  }
  return out;
}
