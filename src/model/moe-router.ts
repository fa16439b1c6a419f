/**
 * The router of a mixture-of-experts layer, as pure functions: softmax over
 * all experts, top-k, optional renormalisation, then the tokens grouped per
 * expert. Everything here is in a fixed order (experts by index, tokens by
 * position in the batch) so that which tokens share a batch, and which rank
 * computes which expert, never changes a bit of the result (DESIGN §4).
 */

export interface RouterSettings {
  numExperts: number;
  numExpertsPerToken: number;
  /** Divide the chosen weights by their sum (Mixtral; Qwen with norm_topk_prob). */
  normTopKProb: boolean;
}

/** The experts each token goes to, sorted by expert index (the canonical combine order). */
export interface Routing {
  numTokens: number;
  /** Experts per token (k). */
  perToken: number;
  /** [numTokens, k] chosen expert indices, ascending within a token. */
  experts: Int32Array;
  /** [numTokens, k] weight of each chosen expert. */
  weights: Float32Array;
}

/** Tokens of a batch grouped by the expert they go to. */
export interface ExpertGroups {
  /** [numExperts + 1] tokens of expert e are entries [offsets[e], offsets[e+1]). */
  offsets: Int32Array;
  /** [numTokens * k] token index of each entry, ascending within an expert. */
  tokens: Int32Array;
  /** [numTokens, k] entry (row of the expert's output) of each routing slot. */
  entryOfSlot: Int32Array;
}

/** logits [numTokens, numExperts] → the top-k experts and weights of every token. */
export function routeTokens(logits: Float32Array, numTokens: number, settings: RouterSettings): Routing {
  const { numExperts, numExpertsPerToken: k } = settings;
  const experts = new Int32Array(numTokens * k);
  const weights = new Float32Array(numTokens * k);
  const probabilities = new Float64Array(numExperts);
  const chosen = new Int32Array(k);
  for (let token = 0; token < numTokens; token++) {
    softmaxInto(logits.subarray(token * numExperts, (token + 1) * numExperts), probabilities);
    topK(probabilities, chosen);
    chosen.sort();
    let total = 0;
    for (let slot = 0; slot < k; slot++) total += probabilities[chosen[slot]];
    for (let slot = 0; slot < k; slot++) {
      const p = probabilities[chosen[slot]];
      experts[token * k + slot] = chosen[slot];
      weights[token * k + slot] = settings.normTopKProb ? p / total : p;
    }
  }
  return { numTokens, perToken: k, experts, weights };
}

/** Softmax in float64, summed in expert order. */
function softmaxInto(row: Float32Array, out: Float64Array): void {
  let max = -Infinity;
  for (let e = 0; e < row.length; e++) max = Math.max(max, row[e]);
  let sum = 0;
  for (let e = 0; e < row.length; e++) {
    out[e] = Math.exp(row[e] - max);
    sum += out[e];
  }
  for (let e = 0; e < row.length; e++) out[e] /= sum;
}

/** Indices of the k largest values; ties go to the lower index. */
function topK(values: Float64Array, chosen: Int32Array): void {
  const taken = new Uint8Array(values.length);
  for (let slot = 0; slot < chosen.length; slot++) {
    let best = -1;
    for (let e = 0; e < values.length; e++) {
      if (!taken[e] && (best < 0 || values[e] > values[best])) best = e;
    }
    taken[best] = 1;
    chosen[slot] = best;
  }
}

/** Groups the routing slots by expert: the gather order of the grouped matrix multiplies. */
export function groupByExpert(routing: Routing, numExperts: number): ExpertGroups {
  const { numTokens, perToken: k, experts } = routing;
  const offsets = new Int32Array(numExperts + 1);
  for (let slot = 0; slot < numTokens * k; slot++) offsets[experts[slot] + 1]++;
  for (let e = 0; e < numExperts; e++) offsets[e + 1] += offsets[e];
  const fill = offsets.slice(0, numExperts);
  const tokens = new Int32Array(numTokens * k);
  const entryOfSlot = new Int32Array(numTokens * k);
  for (let token = 0; token < numTokens; token++) {
    for (let slot = token * k; slot < (token + 1) * k; slot++) {
      const entry = fill[experts[slot]]++;
      tokens[entry] = token;
      entryOfSlot[slot] = entry;
    }
  }
  return { offsets, tokens, entryOfSlot };
}

/** [numExperts] how many tokens each expert received. */
export function tokensPerExpert(groups: ExpertGroups): Int32Array {
  const numExperts = groups.offsets.length - 1;
  const counts = new Int32Array(numExperts);
  for (let e = 0; e < numExperts; e++) counts[e] = groups.offsets[e + 1] - groups.offsets[e];
  return counts;
}
