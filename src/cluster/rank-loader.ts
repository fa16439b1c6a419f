/**
 * Builds what one rank of a plan runs: its stage's weights (composed from
 * the bytes it holds plus only the ranges it lacks, held-shards.ts), its
 * tensor-parallel group and expert group (native collectives when the
 * generation's links have a native plane), the step clock of the per-token
 * breakdown, and the RankRunner over them.
 */
import type { Backend, Weight } from '../backend/backend.js';
import type { DType } from '../core/dtype.js';
import { createBackend } from '../backend/native/select-backend.js';
import { tracedBackend } from '../backend/traced-backend.js';
import { DEFAULT_KV_DTYPE, parseKvDtype } from '../core/kv-dtype.js';
import { openModelFiles, type ModelFiles } from '../engine/model-files.js';
import { ExpertLoad } from '../model/moe-expert-load.js';
import { loadStageExpertFeedForwards } from '../model/moe-stage.js';
import { StageModel } from '../model/shard-stage.js';
import { loadStageWeights } from '../model/shard-weights.js';
import { CollectiveGroup } from '../parallel/collective-group.js';
import { Communicator } from '../parallel/collectives.js';
import { ExpertGroup } from '../parallel/expert-group.js';
import { placeOf, stageRanks } from '../parallel/mesh.js';
import { NativeCollectiveGroup, type RowContext } from '../parallel/native-group.js';
import type { RankLinks } from '../parallel/rank-links.js';
import { StepClock, clockedBackend } from '../parallel/step-clock.js';
import type { TimedTransport } from '../parallel/timed-transport.js';
import type { TensorParallelGroup } from '../model/tensor-parallel.js';
import type { ControlMessage } from './control-message.js';
import type { HeldShards } from './held-shards.js';
import type { TraceEvent } from '../core/trace-event.js';
import { RankRunner } from './rank-runner.js';
import { checkModelIdentity } from './model-identity.js';
import { checkPlanLayers } from './plan-layout.js';

export type PlanMessage = Extract<ControlMessage, { type: 'plan' }>;

export interface LoadedRank {
  runner: RankRunner;
  /** Where the rank's step time goes (compute, waiting, transfer, event loop). */
  clock: StepClock;
  expertLoad?: ExpertLoad;
  /** File bytes read for this plan. */
  bytesRead: number;
  /** Bytes of this plan's slices the rank did not hold before (the floor of bytesRead). */
  newBytes: number;
  bytesHeld: number;
  description: string;
}

/**
 * Weights made from held slices, by the slice's bytes object: a slice a new
 * plan keeps exactly (held-shards.ts hands back the same object) keeps its
 * weight, so a stage that only loses layers loads nothing again. A native
 * weight is the stored bytes in the kernels' layout, with no tie to a thread
 * pool, so native backends of one kernel set (a new one per thread count)
 * share it; other backends' weights (a GPU device's buffers) stay with the
 * backend that made them.
 */
const madeWeights = new WeakMap<Uint8Array, { kind: string; weight: Weight }>();
const instances = new WeakMap<Backend, number>();
let instanceCount = 0;

function backendKind(backend: Backend): string {
  if (backend.name === 'native') return `native/${(backend as { isa?: string }).isa ?? ''}`;
  if (!instances.has(backend)) instances.set(backend, ++instanceCount);
  return `${backend.name}#${instances.get(backend)}`;
}

/** `backend`, except that loading a held slice's bytes again returns the weight made from them before. */
function reusingWeights(backend: Backend): Backend {
  const kind = backendKind(backend);
  const loadWeight = (dtype: DType, shape: readonly number[], bytes: Uint8Array): Weight => {
    const made = madeWeights.get(bytes);
    if (made?.kind === kind) return made.weight;
    const weight = backend.loadWeight(dtype, shape, bytes);
    madeWeights.set(bytes, { kind, weight });
    return weight;
  };
  return new Proxy(backend, { get: (target, key, receiver) => (key === 'loadWeight' ? loadWeight : Reflect.get(target, key, receiver)) });
}

/** Backends by choice and threads: one per process, kept across plans (a native one owns a thread pool). */
const backends = new Map<string, Backend>();

function backendFor(plan: PlanMessage, threads: number | undefined): Backend {
  const key = `${plan.backend}/${threads ?? plan.threads ?? 0}`;
  let backend = backends.get(key);
  if (!backend) {
    backend = createBackend(plan.backend, { threads: threads ?? plan.threads });
    backends.set(key, backend);
  }
  return backend;
}

/**
 * The model's files, kept open across plans: opening parses the metadata and
 * builds the tokenizer (seconds for a large vocabulary), which a re-shard
 * that reads nothing new should not pay again.
 */
export class RankFiles {
  private open: { key: string; files: ModelFiles } | undefined;

  get(plan: PlanMessage): ModelFiles {
    const key = `${plan.modelPath}\0${plan.tokenizerPath ?? ''}`;
    if (this.open?.key !== key) {
      this.close();
      this.open = { key, files: openModelFiles(plan.modelPath, { tokenizerPath: plan.tokenizerPath }) };
    }
    return this.open.files;
  }

  close(): void {
    this.open?.files.store.close();
    this.open = undefined;
  }
}

/**
 * One rank of `plan` over `links`: `transport` is the links' transport with
 * its timing (and spans, when tracing); `links.native`, when present, runs
 * the stage's collectives.
 */
export function loadRank(plan: PlanMessage, rank: number, links: RankLinks, transport: TimedTransport, held: HeldShards, modelFiles: RankFiles, threads?: number): LoadedRank {
  const shape = { tp: plan.tp, pp: plan.pp };
  const { stage, tpRank } = placeOf(rank, shape);
  const files = modelFiles.get(plan);
  // The handshake's model half: same model, a layout that fits it, before any tensor is read.
  checkModelIdentity(files, plan.modelId);
  checkPlanLayers(plan, files.config);
  const [startLayer, endLayer] = plan.layers[stage]!;
  const readBefore = files.store.bytesRead;
  const spans = transport.spans ? { events: transport.spans, pid: rank } : undefined;
  const members = stageRanks(stage, shape);
  const { group, native } = tensorGroup(links, transport, members, rank, spans);
  const clock = new StepClock({ transport, collectives: native });
  const plain = reusingWeights(backendFor(plan, threads));
  // Tracing: every op of this rank is a span beside its step and message spans. Op time is the breakdown's compute.
  const backend = clockedBackend(spans ? tracedBackend(plain, spans) : plain, clock);
  const rowContext = nativeRowContext(plain);
  // Two ranks on shared memory with the native backend share their stage's matmuls row by row (shared-stage.ts).
  const rowSharing = rowContext && plan.tp === 2 ? native?.rowSharing(rowContext) : undefined;
  const overlap = rowSharing ? (plan.rowShare ?? 0) : 0;
  const stagePlan = { tp: plan.tp, tpRank, startLayer, endLayer, overlap };
  held.begin(files.store);
  const weights = loadStageWeights(files.store, files.config, backend, stagePlan, undefined, held);
  held.finish();
  // MoE layers: experts whole on every rank (ep 1) or spread over the stage's ranks (ep = tp).
  const experts = (plan.ep ?? 1) > 1 ? new ExpertGroup(new Communicator(transport, members), native) : undefined;
  const expertLoad = files.config.moe && plan.trace ? new ExpertLoad(files.config.numLayers) : undefined;
  const feedForwards = files.config.moe ? loadStageExpertFeedForwards(files.store, files.config, backend, stagePlan, experts, expertLoad) : undefined;
  const kvDtype = parseKvDtype(plan.kvCacheDtype ?? DEFAULT_KV_DTYPE, "the plan's kvCacheDtype");
  // A new RankRunner per plan: its KV pools cover this plan's layer range only (made on the first step).
  const runner = new RankRunner(new StageModel(files.config, weights, backend, group, stagePlan, feedForwards, rowSharing), transport, shape, kvDtype);
  const collectives = native ? `native ${links.native?.kind} collectives${overlap > 0 ? `, shared rows (each rank holds ${Math.round(100 * (0.5 + overlap))}% of every matrix)` : ''}` : 'collectives over the transport';
  const description = `rank ${rank} of ${plan.tp * plan.pp} (stage ${stage}, tp rank ${tpRank}, layers [${startLayer}, ${endLayer})), ${backend.name} backend, ${kvDtype} KV, ${links.transport.kind} transport, ${collectives}, generation ${plan.generation}`;
  return { runner, clock, expertLoad, bytesRead: files.store.bytesRead - readBefore, newBytes: held.newBytes, bytesHeld: held.bytesHeld, description };
}

/** The native backend's context for shared rows, when the rank computes with it. */
function nativeRowContext(backend: Backend): RowContext | undefined {
  const lender = backend as Backend & { rowContext?: () => RowContext };
  return typeof lender.rowContext === 'function' ? lender.rowContext() : undefined;
}

/**
 * The stage's tensor-parallel collectives: native (synchronous, on this
 * thread, over shared memory or the addon's sockets) when the links have a
 * native plane, else over the transport.
 */
function tensorGroup(links: RankLinks, transport: TimedTransport, members: number[], rank: number, spans?: { events: TraceEvent[]; pid: number }): { group: TensorParallelGroup; native?: NativeCollectiveGroup } {
  if (!links.native) return { group: new CollectiveGroup(new Communicator(transport, members)) };
  const native = NativeCollectiveGroup.open(links.native.comm, links.native.mesh, members, rank, 0, spans);
  return { group: native, native };
}
