/**
 * Expert parallelism (DESIGN §3): the experts of every MoE layer are placed
 * on the ranks of a group (moe-placement.ts), each rank holding only its
 * own. One step of an MoE layer, on every rank of the group at once:
 * 1. each rank routes its home tokens (a contiguous slice of the batch);
 * 2. all-to-all: each token's hidden state goes to the ranks of its experts;
 * 3. each rank runs each of its experts once over every row it received;
 * 4. all-to-all back: each output row returns to its token's home rank;
 * 5. the home rank combines its tokens' expert outputs in expert-index order
 *    (and adds the shared expert), exactly as one rank would;
 * 6. all-gather: every rank gets the whole batch's output, because the next
 *    layer's attention runs on all of it.
 * A matmul row does not depend on the other rows in the call (backend
 * contract) and the combine order is fixed, so the result is bit-identical
 * to one rank's whatever the placement.
 */
import type { Backend } from '../backend/backend.js';
import type { MixtureOfExpertsConfig, ModelConfig } from '../core/model-config.js';
import { DenseFeedForward, type FeedForward } from './feed-forward.js';
import type { ExpertLoad } from './moe-expert-load.js';
import { addSharedExpert, combineExpertOutputs, gatherRows, runExpert } from './moe-feed-forward.js';
import { expertsOf, homeTokens, type ExpertPlacement } from './moe-placement.js';
import { groupByExpert, routeTokens, type ExpertGroups } from './moe-router.js';
import type { MixtureOfExpertsWeights } from './moe-weights.js';
import { SINGLE_RANK } from './tensor-parallel.js';
import type { TransformerWeights } from './transformer-weights.js';

/** The collectives expert parallelism needs (src/parallel implements them over a Transport). */
export interface ExpertParallelGroup {
  readonly size: number;
  readonly rank: number;
  /** parts[j] goes to member j; returns what each member sent here, in group order. */
  allToAll(parts: readonly Float32Array[]): Promise<Float32Array[]>;
  /** Every member's values, in group order, on every member. */
  allGather(mine: Float32Array): Promise<Float32Array[]>;
}

export class ExpertParallelFeedForward implements FeedForward {
  /** Per rank: its experts, ascending. */
  private readonly expertsByRank: number[][];

  constructor(
    private readonly backend: Backend,
    private readonly settings: MixtureOfExpertsConfig,
    private readonly weights: MixtureOfExpertsWeights,
    private readonly hiddenSize: number,
    private readonly placement: ExpertPlacement,
    private readonly group: ExpertParallelGroup,
    private readonly layer: number,
    private readonly load?: ExpertLoad,
  ) {
    this.expertsByRank = Array.from({ length: group.size }, (_, rank) => expertsOf(placement, rank));
  }

  /** x [numTokens, hiddenSize] (normed, the same on every rank) → [numTokens, hiddenSize] on every rank. */
  async forward(x: Float32Array, numTokens: number): Promise<Float32Array> {
    const { hiddenSize: width, group } = this;
    const [start, end] = homeTokens(numTokens, group.size, group.rank);
    /** [homeCount, hiddenSize] */
    const home = x.subarray(start * width, end * width);
    const homeCount = end - start;
    const routing = routeTokens(this.backend.matmul(home, this.weights.router, homeCount), homeCount, this.settings);
    const groups = groupByExpert(routing, this.settings.numExperts);
    const received = await group.allToAll(this.expertsByRank.map((experts) => this.dispatchMessage(home, groups, experts)));
    const returned = await group.allToAll(this.computeReceived(received));
    const outputs = this.outputsFromReturned(returned, groups);
    const out = combineExpertOutputs(routing, groups, outputs, width);
    addSharedExpert(this.backend, this.weights, out, home, homeCount, width);
    const slices = await group.allGather(out);
    /** [numTokens, hiddenSize] */
    const full = new Float32Array(numTokens * width);
    slices.forEach((slice, rank) => full.set(slice, homeTokens(numTokens, group.size, rank)[0] * width));
    return full;
  }

  /** [count of each expert of the destination (as floats), then their rows in expert order] */
  private dispatchMessage(home: Float32Array, groups: ExpertGroups, experts: readonly number[]): Float32Array {
    const width = this.hiddenSize;
    const counts = experts.map((expert) => groups.offsets[expert + 1] - groups.offsets[expert]);
    const message = new Float32Array(experts.length + counts.reduce((a, b) => a + b, 0) * width);
    let at = experts.length;
    experts.forEach((expert, i) => {
      message[i] = counts[i];
      const tokens = groups.tokens.subarray(groups.offsets[expert], groups.offsets[expert + 1]);
      message.set(gatherRows(home, tokens, width), at);
      at += counts[i] * width;
    });
    return message;
  }

  /** Runs each own expert once over the rows all ranks sent; answers each rank with its rows' outputs. */
  private computeReceived(received: readonly Float32Array[]): Float32Array[] {
    const width = this.hiddenSize;
    const mine = this.expertsByRank[this.group.rank];
    /** [source][expert i] rows */
    const counts = received.map((message) => mine.map((_, i) => message[i]));
    const replies = received.map((_, source) => new Float32Array(counts[source].reduce((a, b) => a + b, 0) * width));
    const readAt = received.map(() => mine.length);
    const writeAt = received.map(() => 0);
    const tokensOfExpert = new Int32Array(mine.length);
    mine.forEach((expert, i) => {
      const total = counts.reduce((sum, row) => sum + row[i], 0);
      tokensOfExpert[i] = total;
      if (total === 0) return;
      /** [total, hiddenSize] every source's rows for this expert, in source order */
      const rows = new Float32Array(total * width);
      let filled = 0;
      received.forEach((message, source) => {
        const size = counts[source][i] * width;
        rows.set(message.subarray(readAt[source], readAt[source] + size), filled);
        readAt[source] += size;
        filled += size;
      });
      const output = runExpert(this.backend, this.weights.experts[expert]!, rows, total);
      let taken = 0;
      replies.forEach((reply, source) => {
        const size = counts[source][i] * width;
        reply.set(output.subarray(taken, taken + size), writeAt[source]);
        writeAt[source] += size;
        taken += size;
      });
    });
    this.recordLoad(mine, tokensOfExpert);
    return replies;
  }

  /** Per expert: the output rows of this rank's home tokens, in group order. */
  private outputsFromReturned(returned: readonly Float32Array[], groups: ExpertGroups): (Float32Array | undefined)[] {
    const width = this.hiddenSize;
    const outputs: (Float32Array | undefined)[] = new Array<Float32Array | undefined>(this.settings.numExperts).fill(undefined);
    returned.forEach((reply, rank) => {
      let at = 0;
      for (const expert of this.expertsByRank[rank]) {
        const size = (groups.offsets[expert + 1] - groups.offsets[expert]) * width;
        if (size > 0) outputs[expert] = reply.subarray(at, at + size);
        at += size;
      }
    });
    return outputs;
  }

  /** This rank records the tokens its own experts computed: per-rank load, the figure EP balancing needs. */
  private recordLoad(mine: readonly number[], tokensOfExpert: Int32Array): void {
    if (!this.load) return;
    const counts = new Int32Array(this.settings.numExperts);
    mine.forEach((expert, i) => {
      counts[expert] = tokensOfExpert[i];
    });
    this.load.record(this.layer, counts);
  }
}

/**
 * Every layer's feed-forward for one rank of an expert-parallel group: MoE
 * layers dispatch over the group, dense layers run whole on every rank.
 */
export function createExpertParallelFeedForwards(
  weights: TransformerWeights,
  backend: Backend,
  config: ModelConfig,
  placement: ExpertPlacement,
  group: ExpertParallelGroup,
  load?: ExpertLoad,
): FeedForward[] {
  return weights.layers.map((layer, index) => {
    if (layer.mixtureOfExperts && config.moe) {
      return new ExpertParallelFeedForward(backend, config.moe, layer.mixtureOfExperts, config.hiddenSize, placement, group, index, load);
    }
    if (!layer.feedForward) throw new Error(`layer ${index} has neither dense nor expert feed-forward weights`);
    return new DenseFeedForward(backend, layer.feedForward, SINGLE_RANK);
  });
}
