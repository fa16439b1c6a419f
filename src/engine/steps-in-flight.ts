/**
 * Engine steps sent to the model runner and not yet answered. A runner whose
 * stages work one after another (a pipeline-parallel mesh, stepsInFlight > 1)
 * gets several steps at once, each over a disjoint group of sequences, so
 * stage 0 computes one group while stage 1 computes another. Each sequence's
 * own computation is what it would be alone (batch invariance, DESIGN §4), so
 * grouping changes no output. A step's answer may come back after its
 * sequences moved on without it (cancelled, or preempted when the KV was
 * lost); such chunks are stale and their rows are dropped.
 */
import type { PickedRows } from './token-pick.js';
import type { ScheduledChunk } from './scheduler.js';
import type { Sequence } from './sequence.js';

export type StepResult = { rows: PickedRows } | { error: unknown };

export interface LaunchedStep {
  chunks: readonly ScheduledChunk[];
  /** Per chunk: its sequence's preemption count at launch (a preemption since makes the chunk stale). */
  preemptions: readonly number[];
  /** Per chunk: whether it reaches its sequence's end, so has a logit row. */
  hasRow: readonly boolean[];
  batchTokens: number;
  /** The core's KV epoch at launch: a KV loss handled since makes this step's own loss old news. */
  kvEpoch: number;
  result: Promise<StepResult>;
}

/** Sequences some step in flight computes: no other step may take them, and none may be preempted for blocks. */
export function busySequences(steps: readonly LaunchedStep[]): Set<Sequence> {
  return new Set(steps.flatMap((step) => step.chunks.map((chunk) => chunk.sequence)));
}

/**
 * Sequences one step may take when `depth` steps share the work: an even
 * share of those that can run, so each group keeps a stage busy (a group per
 * stage; smaller groups would read each stage's weights more often).
 */
export function groupCap(depth: number, runnable: number): number {
  return depth <= 1 ? Infinity : Math.max(1, Math.ceil(runnable / depth));
}
