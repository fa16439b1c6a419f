/**
 * Resource requests from `tessera plan`'s memory figure: each worker pod is
 * one rank on its own node share, so its memory is the planner's weights
 * of the heaviest stage plus the KV cache the rank allocates, plus the
 * runtime's own. Requests equal limits for memory: a rank that grows past
 * its plan is a bug to see, not a neighbour to squeeze.
 */
import type { HardwareSpec } from '../planner/hardware.js';
import type { ModelShape } from '../planner/model-shape.js';
import { planDeployment } from '../planner/plan.js';
import type { KvDtype, WeightDtype } from '../planner/precision.js';
import { ranksPerReplica, type DeploySpec } from './deploy-spec.js';

const MIB = 2 ** 20;
const GIB = 2 ** 30;

export interface RankMemory {
  /** Weights one rank of the heaviest stage holds, MiB. */
  readonly weightsMib: number;
  /** KV cache per rank, MiB (the planner's, capped by --kv-cache-mib). */
  readonly kvCacheMib: number;
  /** What a worker pod requests: weights + KV + overhead, whole MiB. */
  readonly requestMib: number;
  /** One line saying where the figure comes from, for the manifest's header. */
  readonly source: string;
}

export interface PlanSource {
  readonly shape: ModelShape;
  readonly hardware: HardwareSpec;
  readonly weights: WeightDtype;
}

/** The planner's memory per rank for this deployment's layout. */
export function rankMemory(spec: DeploySpec, plan: PlanSource): RankMemory {
  const kv: KvDtype = spec.kvCacheDtype === 'f16' ? 'fp16' : 'f32';
  const ranks = ranksPerReplica(spec) * spec.replicas;
  const result = planDeployment({
    shape: plan.shape,
    hardware: plan.hardware,
    layout: { tp: spec.tp, pp: spec.pp, ep: 1, dp: spec.replicas },
    // One rank per pod: on CPU hardware every rank has a host (node share) to itself.
    devices: plan.hardware.kind === 'cpu' ? ranks : undefined,
    weights: plan.weights,
    kv,
    workload: { inputLength: 512, outputLength: 128, arrival: { kind: 'closed', concurrency: 1 }, burst: false },
    frontend: 'http',
    kvCacheGiB: spec.kvCacheMib / 1024,
  });
  const weightsMib = (result.weightsPerDeviceGiB * GIB) / MIB;
  const kvCacheMib = ((result.memoryPerDeviceGiB - result.weightsPerDeviceGiB) * GIB) / MIB;
  const requestMib = Math.ceil(weightsMib + kvCacheMib + spec.overheadMib);
  const source = `tessera plan: ${plan.shape.name} ${plan.weights} on ${plan.hardware.name}, tp ${spec.tp} pp ${spec.pp}: ${weightsMib.toFixed(0)} MiB weights + ${kvCacheMib.toFixed(0)} MiB KV cache + ${spec.overheadMib} MiB runtime = ${requestMib} MiB per rank`;
  return { weightsMib, kvCacheMib, requestMib, source };
}
