/**
 * The mixture-of-experts feed-forward (Mixtral, Qwen2-MoE, Qwen3-MoE):
 * route every token to its top-k experts, gather the tokens of each expert
 * and run that expert once over all of them (one matrix multiply per
 * projection per expert per step), then combine each token's expert outputs
 * in expert-index order. Matmul rows are independent of one another
 * (backend contract), and the combine order is fixed, so the result of a
 * token never depends on which tokens share its batch.
 */
import type { Backend } from '../backend/backend.js';
import type { MixtureOfExpertsConfig } from '../core/model-config.js';
import { DenseFeedForward, type FeedForward } from './feed-forward.js';
import type { ExpertLoad } from './moe-expert-load.js';
import { groupByExpert, routeTokens, tokensPerExpert, type ExpertGroups, type Routing } from './moe-router.js';
import type { ExpertWeights, MixtureOfExpertsWeights } from './moe-weights.js';
import { SINGLE_RANK, type TensorParallelGroup } from './tensor-parallel.js';
import type { TransformerWeights } from './transformer-weights.js';

export class MixtureOfExpertsFeedForward implements FeedForward {
  constructor(
    private readonly backend: Backend,
    private readonly settings: MixtureOfExpertsConfig,
    private readonly weights: MixtureOfExpertsWeights,
    private readonly hiddenSize: number,
    private readonly layer: number,
    private readonly load?: ExpertLoad,
  ) {}

  /** x [numTokens, hiddenSize] (normed) → [numTokens, hiddenSize] */
  async forward(x: Float32Array, numTokens: number): Promise<Float32Array> {
    // Routing, gathering and combining run on the host: a device backend hands x back first.
    this.backend.flush?.([x]);
    const routing = this.route(x, numTokens);
    const groups = groupByExpert(routing, this.settings.numExperts);
    this.load?.record(this.layer, tokensPerExpert(groups));
    const outputs = this.computeExperts(x, groups);
    this.backend.flush?.(outputs.filter((output): output is Float32Array => output !== undefined));
    const out = combineExpertOutputs(routing, groups, outputs, this.hiddenSize);
    addSharedExpert(this.backend, this.weights, out, x, numTokens, this.hiddenSize);
    return out;
  }

  /** The router's choice for every token: top-k experts and their weights. */
  route(x: Float32Array, numTokens: number): Routing {
    /** [numTokens, numExperts] */
    const logits = this.backend.matmul(x, this.weights.router, numTokens);
    this.backend.flush?.([logits]);
    return routeTokens(logits, numTokens, this.settings);
  }

  /** Per expert: its output rows [tokens of the expert, hiddenSize], in group order. */
  private computeExperts(x: Float32Array, groups: ExpertGroups): (Float32Array | undefined)[] {
    const outputs: (Float32Array | undefined)[] = [];
    for (let expert = 0; expert < this.settings.numExperts; expert++) {
      const start = groups.offsets[expert];
      const count = groups.offsets[expert + 1] - start;
      const weights = this.weights.experts[expert];
      if (count === 0 || !weights) {
        outputs.push(undefined);
        continue;
      }
      outputs.push(runExpert(this.backend, weights, gatherRows(x, groups.tokens.subarray(start, start + count), this.hiddenSize), count));
    }
    return outputs;
  }
}

/** out [numTokens, hiddenSize] += sigmoid(x · sharedGate) * sharedExpert(x) (Qwen2-MoE); nothing without a shared expert. */
export function addSharedExpert(
  backend: Backend,
  weights: MixtureOfExpertsWeights,
  out: Float32Array,
  x: Float32Array,
  numTokens: number,
  hiddenSize: number,
): void {
  const { shared, sharedGate } = weights;
  if (!shared || !sharedGate || numTokens === 0) return;
  /** [numTokens, hiddenSize] */
  const expertOut = runExpert(backend, shared, x, numTokens);
  /** [numTokens, 1] */
  const gateLogits = backend.matmul(x, sharedGate, numTokens);
  backend.flush?.([expertOut, gateLogits]);
  for (let token = 0; token < numTokens; token++) {
    const gate = Math.fround(1 / (1 + Math.exp(-gateLogits[token])));
    for (let i = token * hiddenSize; i < (token + 1) * hiddenSize; i++) out[i] += Math.fround(gate * expertOut[i]);
  }
}

/** down(silu(gate(x)) * up(x)) of one expert over its gathered rows x [count, hiddenSize]. */
export function runExpert(backend: Backend, weights: ExpertWeights, x: Float32Array, count: number): Float32Array {
  /** [count, expertIntermediateSize] */
  const [gate, up] = backend.matmulMany(x, [weights.gate, weights.up], count);
  const activated = backend.siluMul(gate, up);
  return backend.matmul(activated, weights.down, count);
}

/** Rows `tokens` of x [numTokens, width] → [tokens.length, width]. */
export function gatherRows(x: Float32Array, tokens: Int32Array, width: number): Float32Array {
  const out = new Float32Array(tokens.length * width);
  for (let i = 0; i < tokens.length; i++) out.set(x.subarray(tokens[i] * width, (tokens[i] + 1) * width), i * width);
  return out;
}

/**
 * [numTokens, hiddenSize] Σ weight · expert output over each token's
 * experts, in ascending expert index (the canonical order), each product
 * rounded to float32 before it is added.
 */
export function combineExpertOutputs(
  routing: Routing,
  groups: ExpertGroups,
  outputs: readonly (Float32Array | undefined)[],
  hiddenSize: number,
): Float32Array {
  const { numTokens, perToken: k, experts, weights } = routing;
  const out = new Float32Array(numTokens * hiddenSize);
  for (let token = 0; token < numTokens; token++) {
    const row = out.subarray(token * hiddenSize, (token + 1) * hiddenSize);
    for (let slot = token * k; slot < (token + 1) * k; slot++) {
      const expert = experts[slot];
      const output = outputs[expert];
      if (!output) throw new Error(`expert ${expert} has no output for a routed token (expert placement bug)`);
      const local = groups.entryOfSlot[slot] - groups.offsets[expert];
      const source = output.subarray(local * hiddenSize, (local + 1) * hiddenSize);
      const weight = weights[slot];
      for (let i = 0; i < hiddenSize; i++) row[i] += Math.fround(weight * source[i]);
    }
  }
  return out;
}

/**
 * The feed-forward of every layer: dense SwiGLU where the layer has dense
 * weights, a mixture of experts where it has a router.
 */
export function createFeedForwards(
  weights: TransformerWeights,
  backend: Backend,
  settings: MixtureOfExpertsConfig | undefined,
  hiddenSize: number,
  group: TensorParallelGroup = SINGLE_RANK,
  load?: ExpertLoad,
): FeedForward[] {
  return weights.layers.map((layer, index) => {
    if (layer.mixtureOfExperts && settings) {
      return new MixtureOfExpertsFeedForward(backend, settings, layer.mixtureOfExperts, hiddenSize, index, load);
    }
    if (!layer.feedForward) throw new Error(`layer ${index} has neither dense nor expert feed-forward weights`);
    return new DenseFeedForward(backend, layer.feedForward, group);
  });
}
