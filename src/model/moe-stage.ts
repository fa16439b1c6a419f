/**
 * The MoE layers of one rank of a tensor-parallel stage: attention splits
 * by heads (shard-stage.ts) and the experts spread over the same ranks
 * (expert parallelism with ep = tp), or stay whole on every rank (ep = 1).
 * The router and a shared expert are small and replicated. The feed-forwards
 * returned here replace the stage's dense MLPs (StageModel's overrides).
 */
import type { Backend } from '../backend/backend.js';
import { TesseraError } from '../core/errors.js';
import type { ModelConfig } from '../core/model-config.js';
import type { TensorStore } from '../format/tensor-store.js';
import type { FeedForward } from './feed-forward.js';
import type { ExpertLoad } from './moe-expert-load.js';
import { ExpertParallelFeedForward, type ExpertParallelGroup } from './moe-expert-parallel.js';
import { MixtureOfExpertsFeedForward } from './moe-feed-forward.js';
import { placeExperts } from './moe-placement.js';
import { isMixtureOfExpertsLayer, loadMixtureOfExperts } from './moe-weights.js';
import type { StagePlan } from './shard-weights.js';
import { WeightLoader } from './transformer-weights.js';

/** Layers [startLayer, endLayer) of the plan: an MoE feed-forward where the layer has a router (a sparse array). */
export function loadStageExpertFeedForwards(
  store: TensorStore,
  config: ModelConfig,
  backend: Backend,
  plan: StagePlan,
  experts: ExpertParallelGroup | undefined,
  load?: ExpertLoad,
): FeedForward[] {
  const moe = config.moe;
  const feedForwards: FeedForward[] = new Array<FeedForward>(config.numLayers);
  if (!moe) return feedForwards;
  checkExpertParallel(config, plan.tp, experts?.size ?? 1);
  const placement = placeExperts(moe.numExperts, experts?.size ?? 1);
  const rank = experts?.rank ?? 0;
  const loader = new WeightLoader(store, backend);
  for (let layer = plan.startLayer; layer < plan.endLayer; layer++) {
    if (!isMixtureOfExpertsLayer(loader, layer)) continue;
    const weights = loadMixtureOfExperts(loader, config, layer, (expert) => placement.ownerOf[expert] === rank);
    feedForwards[layer] =
      experts && experts.size > 1
        ? new ExpertParallelFeedForward(backend, moe, weights, config.hiddenSize, placement, experts, layer, load)
        : new MixtureOfExpertsFeedForward(backend, moe, weights, config.hiddenSize, layer, load);
  }
  return feedForwards;
}

/** Refuses expert-parallel degrees this build cannot run, naming the constraint. */
export function checkExpertParallel(config: ModelConfig, tp: number, ep: number): void {
  if (ep === 1) return;
  if (!config.moe) {
    throw new TesseraError('TESSERA_ERR_SHARD_CONSTRAINT', `--ep ${ep} needs a mixture-of-experts model; this one is dense, so drop --ep`);
  }
  if (ep !== tp) {
    throw new TesseraError('TESSERA_ERR_SHARD_CONSTRAINT', `--ep ${ep} must equal --tp ${tp} (experts spread over the ranks that split attention), or be 1`);
  }
  placeExperts(config.moe.numExperts, ep);
}
