/**
 * The sampler with a request's logit bias and output constraint applied.
 * The token is always the one sampleToken would draw from the biased logits
 * with every forbidden id at −∞ (the fully masked distribution); the
 * shortcuts only skip work. Under greedy decoding without penalties the
 * masked choice is the best-ranked allowed token, so the best candidates are
 * checked one by one (a few automaton steps each) before any mask is built:
 * masking only removes candidates, and ties go to the lowest id either way.
 */
import type { GrammarCursor } from './grammar-cursor.js';
import { hasPenalties, sampleToken, type SamplingHistory, type SamplingParams } from './sampler.js';
import { argmax, topIds } from './token-ranking.js';

/** Pairs [token id, bias]: added to the logit before penalties, as OpenAI's logit_bias. */
export type LogitBias = readonly (readonly [number, number])[];

/** Candidates checked before building a mask; beyond them a mask walk is cheaper. */
const CANDIDATES = 16;

export function sampleGuided(
  logits: Float32Array,
  params: SamplingParams,
  history: SamplingHistory,
  position: number,
  cursor: GrammarCursor | undefined,
  logitBias: LogitBias | undefined,
): number {
  const scores = logitBias && logitBias.length > 0 ? biased(logits, logitBias) : logits;
  if (!cursor) return sampleToken(scores, params, history, position);
  if (params.temperature === 0) {
    if (!hasPenalties(params)) return greedyAllowed(scores, cursor);
    const best = sampleToken(scores, params, history, position);
    if (cursor.allows(best)) return best;
  }
  return sampleToken(cursor.constrain(scores), params, history, position);
}

/** argmax of the masked scores: the first allowed id in rank order. */
function greedyAllowed(scores: Float32Array, cursor: GrammarCursor): number {
  const best = argmax(scores);
  if (cursor.allows(best)) return best;
  if (!cursor.maskCached) {
    for (const id of topIds(scores, CANDIDATES)) if (cursor.allows(id)) return id;
  }
  return cursor.bestAllowed(scores);
}

function biased(logits: Float32Array, bias: LogitBias): Float32Array {
  /** [vocabSize] */
  const out = Float32Array.from(logits);
  for (const [id, value] of bias) out[id] += value;
  return out;
}
