/**
 * Builds what one rank of a plan runs: its stage's weights (composed from
 * the bytes it holds plus only the ranges it lacks, held-shards.ts), its
 * tensor-parallel group and expert group, and the RankRunner over them.
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
import type { TimedTransport } from '../parallel/timed-transport.js';
import type { ControlMessage } from './control-message.js';
import type { HeldShards } from './held-shards.js';
import { RankRunner } from './rank-runner.js';

export type PlanMessage = Extract<ControlMessage, { type: 'plan' }>;

export interface LoadedRank {
  runner: RankRunner;
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

export function loadRank(plan: PlanMessage, rank: number, transport: TimedTransport, held: HeldShards, modelFiles: RankFiles, threads?: number): LoadedRank {
  const shape = { tp: plan.tp, pp: plan.pp };
  const { stage, tpRank } = placeOf(rank, shape);
  const [startLayer, endLayer] = plan.layers[stage];
  const files = modelFiles.get(plan);
  const readBefore = files.store.bytesRead;
  const plain = reusingWeights(backendFor(plan, threads));
  // Tracing: every op of this rank is a span beside its step and message spans.
  const backend = transport.spans ? tracedBackend(plain, { events: transport.spans, pid: rank }) : plain;
  const stagePlan = { tp: plan.tp, tpRank, startLayer, endLayer };
  held.begin(files.store);
  const weights = loadStageWeights(files.store, files.config, backend, stagePlan, undefined, held);
  held.finish();
  const group = new CollectiveGroup(new Communicator(transport, stageRanks(stage, shape)));
  // MoE layers: experts whole on every rank (ep 1) or spread over the stage's ranks (ep = tp).
  const experts = (plan.ep ?? 1) > 1 ? new ExpertGroup(new Communicator(transport, stageRanks(stage, shape))) : undefined;
  const expertLoad = files.config.moe && plan.trace ? new ExpertLoad(files.config.numLayers) : undefined;
  const feedForwards = files.config.moe ? loadStageExpertFeedForwards(files.store, files.config, backend, stagePlan, experts, expertLoad) : undefined;
  const kvDtype = parseKvDtype(plan.kvCacheDtype ?? DEFAULT_KV_DTYPE, "the plan's kvCacheDtype");
  const runner = new RankRunner(new StageModel(files.config, weights, backend, group, stagePlan, feedForwards), transport, shape, kvDtype);
  const description = `rank ${rank} of ${plan.tp * plan.pp} (stage ${stage}, tp rank ${tpRank}, layers [${startLayer}, ${endLayer})), ${backend.name} backend, ${kvDtype} KV, generation ${plan.generation}`;
  return { runner, expertLoad, bytesRead: files.store.bytesRead - readBefore, newBytes: held.newBytes, bytesHeld: held.bytesHeld, description };
}
