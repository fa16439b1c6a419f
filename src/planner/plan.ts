/**
 * `tessera plan`'s prediction: a model on some hardware with a layout and a
 * workload → TTFT, TPOT, output tokens/s, memory per device, and the
 * resource that bounds the decode step. Pure: every input is data.
 */
import { TesseraError } from '../core/errors.js';
import type { HardwareSpec } from './hardware.js';
import { checkLayout, pipelineStages, placeRanks, type Layout } from './layout.js';
import { memoryUse } from './memory.js';
import type { ModelShape } from './model-shape.js';
import type { KvDtype, WeightDtype } from './precision.js';
import { rankResources } from './rank-resources.js';
import { stageWeightBytes } from './rank-weights.js';
import type { Frontend, IterationTime, Replica } from './replica.js';
import { serveReplica, type BatchLimit } from './serving.js';
import type { Arrival, Workload } from './workload.js';

export interface PlanInput {
  readonly shape: ModelShape;
  readonly hardware: HardwareSpec;
  readonly layout: Layout;
  /** GPUs: must equal tp × pp × dp when given; CPU hosts: how many hosts the ranks spread over. */
  readonly devices?: number;
  /** CPU hosts: threads per rank (default: the host's cores over its ranks). */
  readonly threads?: number;
  readonly weights: WeightDtype;
  readonly kv: KvDtype;
  readonly workload: Workload;
  readonly frontend: Frontend;
  /** Caps each rank's KV pool (Tessera's --kv-cache-mib); default: all memory left. */
  readonly kvCacheGiB?: number;
}

export type Bottleneck = 'memory-bandwidth' | 'compute' | 'network' | 'overhead' | 'pipeline-bubble';

export interface StepReport {
  readonly ms: number;
  readonly memoryMs: number;
  readonly computeMs: number;
  readonly networkMs: number;
  readonly overheadMs: number;
  readonly bubbleMs: number;
  readonly ops: readonly { op: string; ms: number; bound: string; bytes: number; flops: number }[];
}

export interface PlanResult {
  readonly ttftMs: number | null;
  readonly tpotMs: number;
  readonly outputTokensPerSecond: number;
  readonly memoryPerDeviceGiB: number;
  readonly bottleneck: Bottleneck;
  readonly requestsPerSecond: number;
  readonly prefillTokensPerSecond: number;
  readonly devices: number;
  readonly layout: Layout;
  /** Sequences one replica decodes together, and what limits it. */
  readonly batch: number;
  readonly batchLimit: BatchLimit;
  /** Poisson arrivals beyond capacity: the queue grows, TTFT is unbounded (null). */
  readonly saturated: boolean;
  readonly weightsPerDeviceGiB: number;
  readonly kvCacheTokens: number;
  readonly decodeStep: StepReport;
}

const GIB = 2 ** 30;

function perReplica(arrival: Arrival, dp: number): Arrival {
  switch (arrival.kind) {
    case 'closed':
      return { kind: 'closed', concurrency: Math.max(1, Math.ceil(arrival.concurrency / dp)) };
    case 'poisson':
      return { kind: 'poisson', qps: arrival.qps / dp };
    case 'max':
      return arrival;
  }
}

/** The part of the decode step that takes longest names the bottleneck. */
export function bottleneckOf(step: IterationTime): Bottleneck {
  const parts: [Bottleneck, number][] = [
    ['memory-bandwidth', step.memoryMs],
    ['compute', step.computeMs],
    ['network', step.networkMs],
    ['overhead', step.overheadMs],
    ['pipeline-bubble', step.bubbleMs],
  ];
  return parts.reduce((a, b) => (b[1] > a[1] ? b : a))[0];
}

function stepReport(step: IterationTime): StepReport {
  const { ms, memoryMs, computeMs, networkMs, overheadMs, bubbleMs } = step;
  return { ms, memoryMs, computeMs, networkMs, overheadMs, bubbleMs, ops: step.ops.map((op) => ({ op: op.op, ms: op.ms, bound: op.bound, bytes: op.bytes, flops: op.flops })) };
}

/** The smallest tp × pp whose weights fit one device, to say what would fit. */
function fittingSplit(input: PlanInput): string {
  const perNode = Math.max(1, input.hardware.devicesPerNode);
  for (const ranks of [1, 2, 4, 8, 16, 32, 64]) {
    // Tensor parallelism within a node first, then pipeline stages across nodes.
    const tpInNode = Math.min(ranks, perNode);
    for (const [tp, pp] of [[tpInNode, ranks / tpInNode], [ranks, 1]]) {
      const layout = { ...input.layout, tp, pp, ep: 1 };
      try {
        checkLayout(input.shape, layout);
      } catch {
        continue;
      }
      const usable = rankResources(input.hardware, placeRanks(input.hardware, { ...layout, dp: 1 })).usableBytes;
      const heaviest = Math.max(...pipelineStages(input.shape, pp).map((stage) => stageWeightBytes(input.shape, stage, input.weights, layout)));
      if (heaviest < usable * 0.9) return `--tp ${tp}${pp > 1 ? ` --pp ${pp}` : ''} (${tp * pp} × ${input.hardware.name})`;
    }
  }
  return 'more devices than 64';
}

export function buildReplica(input: PlanInput): Replica {
  checkLayout(input.shape, input.layout);
  const placement = placeRanks(input.hardware, input.layout, input.devices, input.threads);
  return {
    shape: input.shape,
    weights: input.weights,
    kv: input.kv,
    layout: input.layout,
    hardware: input.hardware,
    placement,
    resources: rankResources(input.hardware, placement),
    stages: pipelineStages(input.shape, input.layout.pp),
    frontend: input.frontend,
  };
}

export function planDeployment(input: PlanInput): PlanResult {
  const replica = buildReplica(input);
  const memory = memoryUse(replica, input.kvCacheGiB);
  if (memory.weightBytesPerRank >= memory.usableBytesPerRank) {
    const need = (memory.weightBytesPerRank / GIB).toFixed(1);
    const room = (memory.usableBytesPerRank / GIB).toFixed(1);
    throw new TesseraError(
      'TESSERA_ERR_PLAN_DOES_NOT_FIT',
      `${input.shape.name} in ${input.weights} needs ${need} GiB of weights per rank with --tp ${input.layout.tp} --pp ${input.layout.pp}, but a ${input.hardware.name} rank has ${room} GiB: it would fit with ${fittingSplit(input)}`,
    );
  }
  const workload: Workload = { ...input.workload, arrival: perReplica(input.workload.arrival, input.layout.dp) };
  const served = serveReplica(replica, memory, workload);
  const dp = input.layout.dp;
  return {
    ttftMs: served.ttftMs ?? null,
    tpotMs: served.tpotMs,
    outputTokensPerSecond: served.outputTokensPerSecond * dp,
    memoryPerDeviceGiB: memory.memoryPerDeviceGiB,
    bottleneck: bottleneckOf(served.decode),
    requestsPerSecond: served.requestsPerSecond * dp,
    prefillTokensPerSecond: served.prefillTokensPerSecond * dp,
    devices: replica.placement.devices,
    layout: input.layout,
    batch: served.batch,
    batchLimit: served.batchLimit,
    saturated: served.saturated,
    weightsPerDeviceGiB: (memory.weightBytesPerRank * replica.placement.ranksPerDevice) / GIB,
    kvCacheTokens: memory.kvTokenCapacity,
    decodeStep: stepReport(served.decode),
  };
}
