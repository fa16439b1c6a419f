/**
 * One replica (tp × pp ranks) as the serving model sees it: the time of one
 * engine iteration over a batch, with the pipeline's micro-batches and
 * bubbles and the runtime's per-iteration costs, and the time one prompt
 * chunk takes to pass every stage.
 */
import { collectiveMs, groupLink } from './collectives.js';
import type { HardwareSpec } from './hardware.js';
import type { Layout, Placement, Stage } from './layout.js';
import type { ModelShape } from './model-shape.js';
import type { KvDtype, WeightDtype } from './precision.js';
import { rankResources, type RankResources } from './rank-resources.js';
import { stageStepTime, type OpTime, type StageContext, type StepBatch } from './step-time.js';

export type Frontend = 'http' | 'none';

export interface Replica {
  readonly shape: ModelShape;
  readonly weights: WeightDtype;
  readonly kv: KvDtype;
  readonly layout: Layout;
  readonly hardware: HardwareSpec;
  readonly placement: Placement;
  /** What each rank has when every rank of the device is busy (memory sizing uses it). */
  readonly resources: RankResources;
  readonly stages: readonly Stage[];
  readonly frontend: Frontend;
}

/** Where an iteration's time went (ms); the parts add up to `ms`. */
export interface TimeBreakdown {
  readonly memoryMs: number;
  readonly computeMs: number;
  readonly networkMs: number;
  readonly overheadMs: number;
  readonly bubbleMs: number;
}

export interface IterationTime extends TimeBreakdown {
  readonly ms: number;
  /** The slowest stage's ops for the whole batch (all its micro-batches). */
  readonly ops: readonly OpTime[];
  readonly microBatches: number;
}

/** Ranks of the replica busy at once: a stage's tp ranks times the micro-batches in flight. */
function stageContext(replica: Replica, stage: Stage, microBatches: number): StageContext {
  const active = replica.layout.tp * Math.min(replica.layout.pp, microBatches);
  return {
    shape: replica.shape,
    weights: replica.weights,
    kv: replica.kv,
    layout: replica.layout,
    stage,
    hardware: replica.hardware,
    resources: rankResources(replica.hardware, replica.placement, active),
    ranksPerDevice: replica.placement.ranksPerDevice,
  };
}

function scaleBatch(batch: StepBatch, factor: number): StepBatch {
  return { ...batch, decodeTokens: batch.decodeTokens * factor, prefillTokens: batch.prefillTokens * factor, logitRows: batch.logitRows * factor };
}

/** Activations sent from one stage to the next. */
function handoffMs(replica: Replica, batch: StepBatch): number {
  if (replica.layout.pp === 1) return 0;
  const bytes = (batch.decodeTokens + batch.prefillTokens) * replica.shape.hiddenSize * replica.hardware.runtime.activationBytes;
  const link = groupLink(replica.hardware, replica.layout.tp * replica.layout.pp, replica.placement.ranksPerDevice);
  return collectiveMs(link, 'send', bytes, 2);
}

/** CPU hosts whose cores a full pipeline keeps busy: the driver's per-micro-batch work competes with the ranks. */
function contendedMs(replica: Replica, microBatches: number): number {
  const { hardware, layout, placement } = replica;
  if (hardware.kind !== 'cpu' || microBatches < 2) return 0;
  const busyThreads = layout.tp * Math.min(layout.pp, microBatches) * (placement.threadsPerRank ?? 1);
  return busyThreads >= (hardware.cores ?? 1) ? microBatches * hardware.runtime.contendedStepOverheadMs : 0;
}

/** Host time per iteration that no device overlaps. */
export function iterationOverheadMs(hardware: HardwareSpec, sequences: number, frontend: Frontend): number {
  const runtime = hardware.runtime;
  return runtime.stepOverheadMs + sequences * runtime.sequenceOverheadMs + (frontend === 'http' ? runtime.httpStepOverheadMs : 0);
}

function slowestStage(replica: Replica, batch: StepBatch, microBatches: number): ReturnType<typeof stageStepTime> {
  return replica.stages
    .map((stage) => stageStepTime(stageContext(replica, stage, microBatches), batch))
    .reduce((a, b) => (b.ms > a.ms ? b : a));
}

/**
 * One iteration: every sequence of the batch advances one step. With pp
 * stages the batch is cut into min(pp, sequences) micro-batches; stages work
 * on different micro-batches at once, but a micro-batch's next step waits for
 * its previous one to leave the last stage, so with fewer micro-batches than
 * stages part of every stage's time is a bubble.
 */
export function iterationTime(replica: Replica, batch: StepBatch, sequences: number): IterationTime {
  const pp = replica.layout.pp;
  const microBatches = pp > 1 ? Math.max(1, Math.min(pp, Math.ceil(sequences))) : 1;
  const micro = scaleBatch(batch, 1 / microBatches);
  const stage = slowestStage(replica, micro, microBatches);
  const busyMs = microBatches * stage.ms;
  const pipelineMs = pp > 1 ? Math.max(busyMs, pp * (stage.ms + handoffMs(replica, micro))) : busyMs;
  const overheadMs = iterationOverheadMs(replica.hardware, sequences, replica.frontend) + contendedMs(replica, microBatches);
  const ops = stage.ops.map((op) => ({ ...op, bytes: op.bytes * microBatches, flops: op.flops * microBatches, ms: op.ms * microBatches }));
  const sumOps = (bound: 'memory' | 'compute'): number => ops.filter((op) => op.bound === bound).reduce((sum, op) => sum + op.ms, 0);
  return {
    ms: pipelineMs + overheadMs,
    ops,
    microBatches,
    memoryMs: sumOps('memory'),
    computeMs: sumOps('compute'),
    networkMs: microBatches * stage.networkMs,
    overheadMs: overheadMs + microBatches * stage.overheadMs,
    bubbleMs: pipelineMs - busyMs,
  };
}

/** One prompt chunk through every stage in turn (its first token's path), with the iteration's host costs. */
export function passTime(replica: Replica, batch: StepBatch, sequences: number): number {
  const stagesMs = replica.stages.reduce((sum, stage) => sum + stageStepTime(stageContext(replica, stage, 1), batch).ms, 0);
  return stagesMs + (replica.layout.pp - 1) * handoffMs(replica, batch) + iterationOverheadMs(replica.hardware, sequences, replica.frontend);
}
